package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler"
	explainer "github.com/tidb-backup-guard/tidb-backup-guard/reconciler/explain"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
)

// explain prints why one Backup is, or is not, retrying, and what happens next: the
// reconciler's own Decide on what the API server holds now (package explain).
func explain(ctx context.Context, args []string, stdout, stderr io.Writer, o *toolOptions) int {
	fs := pflag.NewFlagSet("explain", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o.addFlags(fs)
	nonRetryable := slices.Clone(retry.DefaultNonRetryable)
	fs.StringSliceVar(&nonRetryable, "non-retryable-errors", nonRetryable, "As the server's flag: failure substrings that are not retried.")
	handOff := ResumeHandOffAuto
	fs.StringVar(&handOff, "resume-hand-off", handOff, "As the server's flag: auto, on or off.")
	ko := NewOptions().KernelOptions
	ko.AddFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s explain NAMESPACE/NAME | NAME [-n NAMESPACE] [flags]\n\n"+
			"Policy, kernel and retry flags must match the server's for the same answers.\n\n%s", o.name, fs.FlagUsages())
	}
	if code, ok := parseFlags(fs, args, stderr, o.name+" explain"); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	errs := o.validate()
	errs = append(errs, ko.Validate(nil)...)
	if handOff != ResumeHandOffAuto && handOff != ResumeHandOffOn && handOff != ResumeHandOffOff {
		errs = append(errs, field.NotSupported(field.NewPath("--resume-hand-off"), handOff, []string{ResumeHandOffAuto, ResumeHandOffOn, ResumeHandOffOff}))
	}
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "%s explain: %v\n", o.name, errs.ToAggregate())
		return 2
	}
	c, ns, restConfig, err := o.client()
	if err != nil {
		fmt.Fprintf(stderr, "%s explain: %v\n", o.name, err)
		return 1
	}
	key := types.NamespacedName{Namespace: ns, Name: fs.Arg(0)}
	if n, name, ok := strings.Cut(fs.Arg(0), "/"); ok {
		key = types.NamespacedName{Namespace: n, Name: name}
	}
	cfg, policies, err := o.resolver(ctx, c, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s explain: %v\n", o.name, err)
		return 1
	}
	noHandOff, err := noResumeHandOff(restConfig, handOff, logr.Discard())
	if err != nil {
		fmt.Fprintf(stderr, "%s explain: %v\n", o.name, err)
		return 1
	}
	r := &reconciler.Reconciler{APIReader: c, Clock: clock.RealClock{}, Config: cfg, Policies: policies,
		NonRetryable: nonRetryable, NoResumeHandOff: noHandOff}
	var probe reconciler.Probe
	if ko.KernelProbe == KernelProbePDEtcd {
		p, err := kernel.New(kernel.Config{EndpointTemplate: ko.KernelPDEndpoint, TLSSecretTemplate: ko.KernelTLSSecret,
			Secrets: c, Timeout: ko.KernelProbeTimeout, CacheTTL: time.Second, Log: logr.Discard()})
		if err != nil {
			fmt.Fprintf(stderr, "%s explain: kernel probe: %v\n", o.name, err)
			return 1
		}
		defer p.Close()
		probe = p.Probe
	}
	x, err := explainer.Describe(ctx, r, key, probe)
	if err != nil {
		fmt.Fprintf(stderr, "%s explain: %v\n", o.name, err)
		return 1
	}
	if o.Output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(x)
	} else {
		err = x.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s explain: %v\n", o.name, err)
		return 1
	}
	return 0
}
