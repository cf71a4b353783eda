package app

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults/audit"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler"
	explainer "github.com/tidb-backup-guard/tidb-backup-guard/reconciler/explain"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/webhook/admissionpolicy"
)

// explainCommand prints why one Backup is, or is not, retrying, and what happens next:
// the reconciler's own decision on what the API server holds now (package explain).
func explainCommand() *cobra.Command {
	o := newToolOptions()
	d := NewOptions().DecisionOptions
	c := &cobra.Command{
		Use:   "explain NAMESPACE/NAME | NAME",
		Short: "Why a log backup is (not) retrying, and what happens next",
		Long: "Decide on one Backup as the reconciler does, with your credentials, and explain the decision. " +
			"The policy, retry and kernel flags must match the server's for the same answers.",
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			errs := append(o.validate(), d.Validate(nil)...)
			if len(errs) > 0 {
				return usageError{errs.ToAggregate()}
			}
			cl, ns, restConfig, err := o.client()
			if err != nil {
				return err
			}
			key := types.NamespacedName{Namespace: ns, Name: args[0]}
			if n, name, ok := strings.Cut(args[0], "/"); ok {
				key = types.NamespacedName{Namespace: n, Name: name}
			}
			cfg, policies, err := o.resolver(c.Context(), cl, &d.PolicyOptions, c.ErrOrStderr())
			if err != nil {
				return err
			}
			noHandOff, err := noResumeHandOff(restConfig, d.ResumeHandOff, logr.Discard())
			if err != nil {
				return err
			}
			r := &reconciler.Reconciler{APIReader: cl, Clock: clock.RealClock{}, Config: cfg, Policies: policies,
				NonRetryable: d.NonRetryableErrors, NoResumeHandOff: noHandOff}
			var probe reconciler.Probe
			if d.KernelProbe == KernelProbePDEtcd {
				p, err := kernel.New(kernel.Config{EndpointTemplate: d.KernelPDEndpoint, TLSSecretTemplate: d.KernelTLSSecret,
					Secrets: cl, Timeout: d.KernelProbeTimeout, CacheTTL: time.Second, Log: logr.Discard()})
				if err != nil {
					return fmt.Errorf("kernel probe: %w", err)
				}
				defer p.Close()
				probe = p.Probe
			}
			x, err := explainer.Describe(c.Context(), r, key, probe)
			if err != nil {
				return err
			}
			if o.Output == "json" {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(x)
			}
			return x.WriteText(c.OutOrStdout())
		},
	}
	o.addFlags(c)
	d.AddFlags(c.Flags())
	return c
}

// auditCommand lists the Backups and BackupSchedules whose policy is missing on a log
// backup, holds the CRD's snapshot defaults on a log backup, or is malformed, and the
// BackupSchedules whose maxBackups clean-up deletes their own log backup; with --fix it
// applies what the mutating webhook would have (package audit). The exit code is 1 while
// something found is left unfixed.
func auditCommand() *cobra.Command {
	o := newToolOptions()
	po := NewOptions().PolicyOptions
	var allNamespaces, fix, dryRun bool
	c := &cobra.Command{
		Use:   "audit [-n NAMESPACE | -A] [--fix [--dry-run]]",
		Short: "Policies that are missing, CRD snapshot defaults, or malformed; schedules that delete their log backup",
		Long: "List the Backups and BackupSchedules whose retry policy the webhooks would have changed or refused, and the " +
			"BackupSchedules whose maxBackups clean-up deletes their own log backup. With --fix, apply the log defaults the " +
			"mutating webhook would have applied (server-side apply, the policy fields only). Exit status 1 while something " +
			"found is left unfixed.",
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			errs := o.validate()
			_, policyErrs := po.DefaultsConfig()
			if errs = append(errs, policyErrs...); dryRun && !fix {
				errs = append(errs, field.Invalid(field.NewPath("--dry-run"), true, "needs --fix"))
			}
			if len(errs) > 0 {
				return usageError{errs.ToAggregate()}
			}
			cl, _, _, err := o.client()
			if err != nil {
				return err
			}
			_, policies, err := o.resolver(c.Context(), cl, &po, c.ErrOrStderr())
			if err != nil {
				return err
			}
			ns := o.Namespace
			if allNamespaces {
				ns = ""
			}
			findings, err := audit.Audit(c.Context(), cl, ns, policies)
			if err != nil {
				return err
			}
			left := len(findings)
			if fix {
				left = 0
				for i := range findings {
					if !audit.Fix(c.Context(), cl, &findings[i], dryRun) {
						left++
					}
				}
			}
			if err := audit.Write(c.OutOrStdout(), findings, fix, o.Output); err != nil {
				return err
			}
			if left > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	o.addFlags(c)
	po.AddFlags(c.Flags())
	c.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", allNamespaces, "Audit every namespace (the default unless -n is given).")
	c.Flags().BoolVar(&fix, "fix", fix, "Apply the log defaults the mutating webhook would have applied, as field manager "+audit.FieldManager+".")
	c.Flags().BoolVar(&dryRun, "dry-run", dryRun, "With --fix: show what would change (server-side dry run), change nothing.")
	return c
}

// renderPoliciesCommand writes the CEL mode's objects (webhook/admissionpolicy): the params
// ConfigMap with the configured defaults, the Mutating- and ValidatingAdmissionPolicies and
// their bindings, as one YAML stream for kubectl apply.
func renderPoliciesCommand() *cobra.Command {
	po := NewOptions().PolicyOptions
	namespace, prefix, selector := "", "tidb-backup-guard", ""
	c := &cobra.Command{
		Use:   "render-policies [flags] | kubectl apply -f -",
		Short: "The CEL mode: admission policies doing what the webhooks do",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			if namespace == "" {
				if namespace = os.Getenv("POD_NAMESPACE"); namespace == "" {
					namespace = "tidb-admin"
				}
			}
			cfg, errs := po.DefaultsConfig()
			if po.NamespacePolicies != "" {
				// The policies read one params object; per-namespace overrides are webhook mode's.
				errs = append(errs, field.Forbidden(field.NewPath("--namespace-policies"), "per-namespace policies are not available in CEL mode"))
			}
			var sel *metav1.LabelSelector
			if selector != "" {
				s, err := metav1.ParseToLabelSelector(selector)
				if err != nil {
					errs = append(errs, field.Invalid(field.NewPath("--namespace-selector"), selector, err.Error()))
				}
				sel = s
			}
			if len(errs) > 0 {
				return usageError{errs.ToAggregate()}
			}
			out, err := admissionpolicy.YAML(admissionpolicy.Render(cfg, admissionpolicy.Options{
				Prefix: prefix, ParamsNamespace: namespace, NamespaceSelector: sel,
				Labels: map[string]string{"app.kubernetes.io/name": "tidb-backup-guard", "app.kubernetes.io/component": "admission-policy"},
			}))
			if err != nil {
				return err
			}
			_, err = c.OutOrStdout().Write(out)
			return err
		},
	}
	po.AddFlags(c.Flags())
	// Not -n/--namespace: in every other command that is the namespace to read from.
	c.Flags().StringVar(&namespace, "params-namespace", namespace, "Namespace of the params ConfigMap, where tidb-backup-guard runs; empty: $POD_NAMESPACE, else tidb-admin.")
	c.Flags().StringVar(&prefix, "name-prefix", prefix, "Start of every object's name.")
	c.Flags().StringVar(&selector, "namespace-selector", selector, "Label selector of the namespaces the policies apply in (as webhook.namespaceSelector); empty: all.")
	return c
}
