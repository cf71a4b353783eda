package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/pflag"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Version is stamped at build time: -ldflags "-X <this package>.Version=v1.2.3".
var Version = "dev"

const usage = `tidb-backup-guard: retry policy webhooks and retries for TiDB Operator log backups.

Usage:
  tidb-backup-guard serve [flags]   run the webhook server (and the reconciler)
  tidb-backup-guard version         print the version
  tidb-backup-guard serve --help    list the flags
`

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintf(stdout, "tidb-backup-guard %s (%s)\n", Version, runtime.Version())
		return 0
	case "serve":
		return serve(args[1:], stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func serve(args []string, stderr io.Writer) int {
	opts := NewOptions()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	opts.AddFlags(fs)
	zapOpts := zap.Options{}
	goFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	zapOpts.BindFlags(goFlags)
	fs.AddGoFlagSet(goFlags)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	opts.BindEnv(fs, os.Getenv)

	log := capVerbosity(zap.New(zap.UseFlagOptions(&zapOpts)))
	ctrl.SetLogger(log)
	a, err := New(opts, log)
	if err != nil {
		fmt.Fprintf(stderr, "tidb-backup-guard: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("Starting", "version", Version)
	if err := a.Start(ctx); err != nil {
		log.Error(err, "Stopped with an error")
		return 1
	}
	log.Info("Stopped")
	return 0
}
