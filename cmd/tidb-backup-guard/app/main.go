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
	"strings"
	"syscall"

	"github.com/spf13/cobra"
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

// usageError is a mistake in how a command was called (exit code 2): a flag, an argument,
// an option value.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exitCode ends a command with a code and nothing more to say: what there was to say is
// printed (audit's findings left unfixed, a server that stopped with an error it logged).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return MainAs("tidb-backup-guard", args, stdout, stderr)
}

// MainAs runs the command line under the name the user called it by (the program's file
// name: as PluginName, it is "kubectl backup-guard"). Exit codes: 0, 1 for a failure, 2
// for a command called wrongly. Errors are printed once, here, after the command's path.
func MainAs(program string, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewCommand(program)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	c, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	fmt.Fprintf(stderr, "%s: %v\n", c.CommandPath(), err)
	if errors.As(err, new(usageError)) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", c.CommandPath())
		return 2
	}
	return 1
}

// NewCommand is the command tree: serve, explain, audit, render-policies, version, and
// cobra's completion. program is the file name it runs as; as PluginName it shows as
// "kubectl backup-guard" (kubectl's plugin display name).
func NewCommand(program string) *cobra.Command {
	return newCommand(program, serveCommand(ServeFlags()))
}

func newCommand(program string, serve *cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:   program,
		Short: "Retry policy webhooks and retries for TiDB Operator log backups",
		Long: "tidb-backup-guard serves the retry-policy webhooks for TiDB Operator Backups (the log-backup defaults " +
			"30s / 5 / 30m, and precise errors for malformed policies) and retries failed log backup commands under " +
			"that policy. Its tools explain and audit read a cluster with your kubeconfig.",
		SilenceErrors: true,
		SilenceUsage:  true,
		// No command is a mistake, not a request for help.
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())
			}
			return usageError{errors.New("a command is required: " + strings.Join(commandNames(c), ", "))}
		},
	}
	if program == PluginName {
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl backup-guard"}
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(serve, explainCommand(), auditCommand(), renderPoliciesCommand(), versionCommand())
	return root
}

func commandNames(c *cobra.Command) []string {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return names
}

// exactArgs is cobra.ExactArgs as a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(c, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0),
		Run: func(c *cobra.Command, _ []string) {
			fmt.Fprintf(c.OutOrStdout(), "tidb-backup-guard %s (%s)\n", Version, runtime.Version())
		},
	}
}

// ParseServe parses a command line as the binary does (the command tree, its flags and
// arguments, then the environment through getenv), without running it, and returns the
// options serve would run with and their problems. args are what follows the program's
// name: the image's entrypoint arguments, then the container's. A deployment's command
// line is checked with it (the chart's, in the tests).
func ParseServe(args []string, getenv func(string) string) (*Options, error) {
	opts, zapOpts, fs := ServeFlags()
	root := newCommand("tidb-backup-guard", serveCommand(opts, zapOpts, fs))
	c, rest, err := root.Find(args)
	if err != nil {
		return nil, err
	}
	if c.Name() != "serve" {
		return nil, fmt.Errorf("%q runs %q, not serve", args, c.CommandPath())
	}
	if err := c.ParseFlags(rest); err != nil {
		return nil, err
	}
	if err := c.ValidateArgs(c.Flags().Args()); err != nil {
		return nil, err
	}
	opts.BindEnv(c.Flags(), getenv)
	if errs := opts.Validate(); len(errs) > 0 {
		return opts, errs.ToAggregate()
	}
	return opts, nil
}

func serveCommand(opts *Options, zapOpts *zap.Options, fs *pflag.FlagSet) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the webhook server and the reconciler",
		Long: "Run the webhook server (the mutating and validating webhooks) and the reconciler, as --components " +
			"selects. Flags win over environment variables, which win over the built-in values.",
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			opts.BindEnv(c.Flags(), os.Getenv)
			log := capVerbosity(zap.New(zap.UseFlagOptions(zapOpts)))
			ctrl.SetLogger(log)
			a, err := New(opts, log)
			if err != nil {
				return err
			}
			log.Info("Starting", "version", Version)
			if err := a.Start(c.Context()); err != nil {
				log.Error(err, "Stopped with an error")
				return exitCode(1)
			}
			log.Info("Stopped")
			return nil
		},
	}
	c.Flags().AddFlagSet(fs)
	return c
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
