package app

import (
	"context"
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

// PluginName is the file name under which kubectl finds the command as a plugin:
// "kubectl backup-guard ..." runs kubectl-backup_guard (kubectl maps the dash of a plugin
// command to an underscore in the file name).
const PluginName = "kubectl-backup_guard"

const usage = `%[1]s: retry policy webhooks and retries for TiDB Operator log backups.

Usage:
  %[1]s serve [flags]                 run the webhook server (and the reconciler)
  %[1]s explain NAMESPACE/NAME        why a log backup is (not) retrying, and what happens next
  %[1]s audit [-n NS] [--fix]         policies that are missing, CRD snapshot defaults, or malformed
  %[1]s render-policies [flags]       the CEL mode: admission policies doing what the webhooks do
  %[1]s version                       print the version
  %[1]s COMMAND --help                list a command's flags
`

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return MainAs("tidb-backup-guard", args, stdout, stderr)
}

// MainAs runs the command line under the name the user called it by (the program's file
// name: as PluginName, it is "kubectl backup-guard").
func MainAs(program string, args []string, stdout, stderr io.Writer) int {
	name := program
	if program == PluginName {
		name = "kubectl backup-guard"
	}
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, name)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "version":
		fmt.Fprintf(stdout, "tidb-backup-guard %s (%s)\n", Version, runtime.Version())
		return 0
	case "serve":
		return serve(args[1:], stderr)
	case "explain":
		return explain(ctx, args[1:], stdout, stderr, newToolOptions(name))
	case "audit":
		return audit(ctx, args[1:], stdout, stderr, newToolOptions(name))
	case "render-policies":
		return renderPolicies(args[1:], stdout, stderr, name)
	case "help", "-h", "--help":
		fmt.Fprintf(stdout, usage, name)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n", args[0])
		fmt.Fprintf(stderr, usage, name)
		return 2
	}
}

func serve(args []string, stderr io.Writer) int {
	opts, zapOpts, fs := ServeFlags()
	fs.SetOutput(stderr)
	if code, ok := parseFlags(fs, args, stderr, "tidb-backup-guard serve"); !ok {
		return code
	}
	opts.BindEnv(fs, os.Getenv)

	log := capVerbosity(zap.New(zap.UseFlagOptions(zapOpts)))
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

// ServeFlags returns the flag set of "serve" with the options and logging options it
// fills: every flag the binary accepts, so that what a deployment passes (the chart's
// args) can be parsed and validated exactly as the server does, without running it.
func ServeFlags() (*Options, *zap.Options, *pflag.FlagSet) {
	opts := NewOptions()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	opts.AddFlags(fs)
	zapOpts := &zap.Options{}
	goFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	zapOpts.BindFlags(goFlags)
	fs.AddGoFlagSet(goFlags)
	return opts, zapOpts, fs
}
