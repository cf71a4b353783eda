package app

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tidb-backup-guard/tidb-backup-guard/certs"
	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
)

// Component names accepted by --components.
const (
	ComponentWebhook    = "webhook"
	ComponentReconciler = "reconciler"
)

// knownComponents lists what this build can run.
var knownComponents = []string{ComponentWebhook, ComponentReconciler}

// Certificate modes accepted by --cert-mode.
const (
	CertModeFiles       = "files"
	CertModeCertManager = "cert-manager"
	CertModeSelfSigned  = "self-signed"
)

var certModes = []string{CertModeFiles, CertModeCertManager, CertModeSelfSigned}

// Environment variables that set the log-backup defaults when the matching flag is not given.
const (
	EnvMinRetryDuration = "LOG_BACKUP_MIN_RETRY_DURATION"
	EnvMaxRetries       = "LOG_BACKUP_MAX_RETRIES"
	EnvRetryTimeout     = "LOG_BACKUP_RETRY_TIMEOUT"
)

// Options are the settings of `tidb-backup-guard serve`, by concern. Each part registers
// its flags (AddFlags) and checks them (Validate, with the flags as field paths); the
// parts are embedded, so o.WebhookPort reads as before.
type Options struct {
	ServerOptions
	WebhookOptions
	CertOptions
	DecisionOptions
	ReconcilerOptions

	// envErrs are environment variables that did not parse (BindEnv), reported by
	// Validate beside every other problem.
	envErrs field.ErrorList
}

// ServerOptions are what every component shares: what runs, its endpoints, its API access.
type ServerOptions struct {
	// Components selects what runs.
	Components []string
	// MetricsBindAddress and HealthProbeBindAddress serve /metrics and /healthz, /readyz;
	// "0" turns one off.
	MetricsBindAddress     string
	HealthProbeBindAddress string
	// Kubeconfig is the kubeconfig file; empty: $KUBECONFIG, then in-cluster.
	Kubeconfig string
	// KubeAPIQPS and KubeAPIBurst limit the server's API requests (client-side).
	KubeAPIQPS   float32
	KubeAPIBurst int
}

// WebhookOptions configure the webhook server.
type WebhookOptions struct {
	// WebhookHost and WebhookPort are where the webhook server listens.
	WebhookHost string
	WebhookPort int
	// TLSMinVersion is "1.2" or "1.3".
	TLSMinVersion string
	// EnableHTTP2 offers h2 on the webhook server.
	EnableHTTP2 bool
}

// CertOptions select and configure the serving certificate's source.
type CertOptions struct {
	// CertMode selects the certificate source: files, cert-manager or self-signed.
	CertMode string
	// CertDir holds tls.crt and tls.key (files and cert-manager modes).
	CertDir string
	// CertPollInterval is how often the certificate files are re-read without a file event.
	CertPollInterval time.Duration
	SelfSignedOptions
}

// SelfSignedOptions configure the self-signed mode: its Secret, names and lifetimes.
type SelfSignedOptions struct {
	CertNamespace, CertSecretName       string
	ServiceName                         string
	CertDNSNames                        []string
	MutatingConfigName                  string
	ValidatingConfigName                string
	CAValidity, CertValidity, CAOverlap time.Duration
	CertResync, CertSettle              time.Duration
}

// PolicyOptions are the log-backup defaults the webhooks and the reconciler share.
type PolicyOptions struct {
	// MinRetryDuration and RetryTimeout as written: parsed by the defaults package, with
	// the rules of a policy on an object (DefaultsConfig).
	MinRetryDuration string
	RetryTimeout     string
	MaxRetries       int64
	// ReplaceSchemaDefaults replaces a log Backup's policy that holds exactly the CRD's
	// snapshot defaults.
	ReplaceSchemaDefaults bool
	// NamespacePolicies names the ConfigMap (NAMESPACE/NAME) of per-namespace log
	// defaults (defaults.NamespacePolicies); empty: none.
	NamespacePolicies string
}

// DecisionOptions are everything that changes what the reconciler decides. serve and
// explain bind this one struct, so that explain, given the server's flags, decides as the
// server does.
type DecisionOptions struct {
	PolicyOptions
	KernelOptions
	// NonRetryableErrors are failure substrings the reconciler does not retry.
	NonRetryableErrors []string
	// ResumeHandOff says whether a running log backup paused by an error may be handed to
	// TiDB Operator for log-resume: ResumeHandOffAuto (whether its Backup CRD has
	// spec.logSubcommand, which came with log-pause and log-resume), "on" or "off".
	ResumeHandOff string
}

// ReconcilerOptions configure the reconciler's running: leadership, scope, pace, mode.
type ReconcilerOptions struct {
	// LeaderElect makes only one replica run the reconciler.
	LeaderElect bool
	// LeaderElectionNamespace holds the lease; empty: the pod's namespace.
	LeaderElectionNamespace string
	// LeaderElectionID names the lease.
	LeaderElectionID string
	// MaxConcurrentReconciles bounds parallel reconciles.
	MaxConcurrentReconciles int
	// WatchNamespaces limits the reconciler to the Backups and Jobs of these namespaces
	// (its cache watches only them); empty: every namespace. One server per tenant can
	// then enforce each tenant's own settings.
	WatchNamespaces []string
	// WriteGuardLimit writes of one Backup in a burst, refilled over WriteGuardWindow,
	// before the reconciler stops writing it for WriteGuardCooldown (a write loop's
	// last line of defence); a limit of 0 turns the guard off.
	WriteGuardLimit    int
	WriteGuardWindow   time.Duration
	WriteGuardCooldown time.Duration
	// WatchInterval is how often a running log backup is looked at although nothing
	// changed (its task in PD, its checkpoint lag); CheckpointLagWarning is the lag past
	// which it gets a CheckpointLagging Warning Event.
	WatchInterval        time.Duration
	CheckpointLagWarning time.Duration
	// Mode is ReconcilerModeEnforce, or ReconcilerModeShadow: decide and report (Would*
	// Events, metrics), write nothing.
	Mode string
}

// KernelOptions configure the kernel probe (the reconciler's reads of PD).
type KernelOptions struct {
	// KernelProbe is "" (off) or KernelProbePDEtcd: read the log backup task from PD's
	// etcd before a retry.
	KernelProbe string
	// KernelPDEndpoint and KernelTLSSecret are the probe's templates ({cluster},
	// {namespace}); an empty KernelTLSSecret means no client TLS.
	KernelPDEndpoint string
	KernelTLSSecret  string
	// KernelProbeTimeout bounds one probe; KernelProbeCacheTTL is how long its answer
	// is reused.
	KernelProbeTimeout  time.Duration
	KernelProbeCacheTTL time.Duration
}

// NewOptions returns the defaults of every option.
func NewOptions() *Options {
	d := defaults.BuiltinLogDefaults
	return &Options{
		ServerOptions: ServerOptions{
			Components:             []string{ComponentWebhook, ComponentReconciler},
			MetricsBindAddress:     ":8080",
			HealthProbeBindAddress: ":8081",
			KubeAPIQPS:             50,
			KubeAPIBurst:           100,
		},
		WebhookOptions: WebhookOptions{WebhookPort: 9443, TLSMinVersion: "1.2"},
		CertOptions: CertOptions{
			CertMode:         CertModeFiles,
			CertDir:          "/tmp/k8s-webhook-server/serving-certs",
			CertPollInterval: 10 * time.Second,
			SelfSignedOptions: SelfSignedOptions{
				// Unset: $POD_NAMESPACE (BindEnv), which the chart sets from the pod.
				CertSecretName:       "tidb-backup-guard-webhook-cert",
				ServiceName:          "tidb-backup-guard",
				MutatingConfigName:   "tidb-backup-guard-mutating",
				ValidatingConfigName: "tidb-backup-guard-validating",
				CAValidity:           365 * 24 * time.Hour,
				CertValidity:         90 * 24 * time.Hour,
				CAOverlap:            10 * time.Minute,
				CertResync:           time.Minute,
				CertSettle:           5 * time.Second,
			},
		},
		DecisionOptions: DecisionOptions{
			PolicyOptions: PolicyOptions{
				MinRetryDuration:      defaults.FormatDuration(d.MinRetryDuration),
				MaxRetries:            d.MaxRetryTimes,
				RetryTimeout:          defaults.FormatDuration(d.RetryTimeout),
				ReplaceSchemaDefaults: true,
			},
			KernelOptions: KernelOptions{
				KernelPDEndpoint:    kernel.DefaultEndpointTemplate,
				KernelProbeTimeout:  kernel.DefaultTimeout,
				KernelProbeCacheTTL: kernel.DefaultCacheTTL,
			},
			NonRetryableErrors: slices.Clone(retry.DefaultNonRetryable),
			ResumeHandOff:      ResumeHandOffAuto,
		},
		ReconcilerOptions: ReconcilerOptions{
			LeaderElectionID:        "tidb-backup-guard-reconciler",
			MaxConcurrentReconciles: 4,
			WriteGuardLimit:         reconciler.DefaultWriteGuardLimit,
			WriteGuardWindow:        reconciler.DefaultWriteGuardWindow,
			WriteGuardCooldown:      reconciler.DefaultWriteGuardCooldown,
			WatchInterval:           reconciler.DefaultWatchInterval,
			CheckpointLagWarning:    reconciler.DefaultLagWarning,
			Mode:                    ReconcilerModeEnforce,
		},
	}
}

// Flag names of the policy defaults (referred to by BindEnv and in errors).
const (
	flagMinRetryDuration = "log-backup-min-retry-duration"
	flagMaxRetries       = "log-backup-max-retries"
	flagRetryTimeout     = "log-backup-retry-timeout"
)

// envAnnotation marks a flag that an environment variable sets when the flag is not given.
const envAnnotation = "tidb-backup-guard/env"

// AddFlags registers every option on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.ServerOptions.AddFlags(fs)
	o.WebhookOptions.AddFlags(fs)
	o.CertOptions.AddFlags(fs)
	o.DecisionOptions.AddFlags(fs)
	o.ReconcilerOptions.AddFlags(fs)
}

// AddFlags registers the options that change a decision (serve's and explain's).
func (o *DecisionOptions) AddFlags(fs *pflag.FlagSet) {
	o.PolicyOptions.AddFlags(fs)
	fs.StringSliceVar(&o.NonRetryableErrors, "non-retryable-errors", o.NonRetryableErrors,
		"Substrings of a failure's reason or message that retrying cannot fix (case-insensitive); an empty value retries everything.")
	fs.StringVar(&o.ResumeHandOff, "resume-hand-off", o.ResumeHandOff,
		"Whether a log backup paused by an error is handed to TiDB Operator for log-resume: auto (if its Backup CRD has spec.logSubcommand, as from v1.6.1), on or off (only record and alert).")
	o.KernelOptions.AddFlags(fs)
}

// Validate checks the options that change a decision: the policy, the kernel probe, the
// hand-off.
func (o *DecisionOptions) Validate(fldPath *field.Path) field.ErrorList {
	errs := o.KernelOptions.Validate(fldPath)
	switch o.ResumeHandOff {
	case ResumeHandOffAuto, ResumeHandOffOn, ResumeHandOffOff:
	default:
		errs = append(errs, field.NotSupported(fldPath.Child("--resume-hand-off"), o.ResumeHandOff,
			[]string{ResumeHandOffAuto, ResumeHandOffOn, ResumeHandOffOff}))
	}
	_, policyErrs := o.DefaultsConfig()
	return append(errs, policyErrs...)
}

func (o *ServerOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.Components, "components", o.Components, "What to run: "+strings.Join(knownComponents, ",")+". The webhook alone needs no Kubernetes API access.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address of the Prometheus /metrics endpoint; 0 turns it off.")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address of /healthz and /readyz; 0 turns them off.")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig of the reconciler; empty: $KUBECONFIG, then in-cluster.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Sustained API requests per second (client-side limit; client-go's own default is 5).")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "API request burst above --kube-api-qps.")
}

func (o *WebhookOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.WebhookHost, "webhook-host", o.WebhookHost, "Address the webhook server binds to; empty means all interfaces.")
	fs.IntVar(&o.WebhookPort, "webhook-port", o.WebhookPort, "Port of the webhook server (HTTPS).")
	fs.StringVar(&o.TLSMinVersion, "tls-min-version", o.TLSMinVersion, "Minimum TLS version of the webhook server: 1.2 or 1.3.")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", o.EnableHTTP2, "Offer HTTP/2 on the webhook server (off: the API server uses HTTP/1.1).")
}

func (o *CertOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.CertMode, "cert-mode", o.CertMode, "Serving certificate source: files (--cert-dir), cert-manager (--cert-dir, mounted from cert-manager's Secret) or self-signed (a CA kept in a Secret, injected into the webhook configurations, rotated).")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "Directory holding the serving certificate as tls.crt and tls.key; reloaded on change.")
	fs.DurationVar(&o.CertPollInterval, "cert-poll-interval", o.CertPollInterval, "How often the certificate files are re-read even without a file event.")
	o.SelfSignedOptions.AddFlags(fs)
}

func (o *SelfSignedOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.CertNamespace, "cert-namespace", o.CertNamespace, "self-signed: namespace of the certificate Secret (env POD_NAMESPACE).")
	_ = fs.SetAnnotation("cert-namespace", envAnnotation, []string{"POD_NAMESPACE"})
	fs.StringVar(&o.CertSecretName, "cert-secret-name", o.CertSecretName, "self-signed: name of the certificate Secret.")
	fs.StringVar(&o.ServiceName, "webhook-service-name", o.ServiceName, "self-signed: the webhook Service, whose DNS names the certificate carries.")
	fs.StringSliceVar(&o.CertDNSNames, "cert-dns-names", o.CertDNSNames, "self-signed: DNS names or IPs of the certificate, instead of the Service's names.")
	fs.StringVar(&o.MutatingConfigName, "mutating-webhook-configuration", o.MutatingConfigName, "self-signed: the MutatingWebhookConfiguration whose caBundle is kept.")
	fs.StringVar(&o.ValidatingConfigName, "validating-webhook-configuration", o.ValidatingConfigName, "self-signed: the ValidatingWebhookConfiguration whose caBundle is kept.")
	fs.DurationVar(&o.CAValidity, "self-signed-ca-validity", o.CAValidity, "self-signed: CA lifetime; rotated at two thirds.")
	fs.DurationVar(&o.CertValidity, "self-signed-cert-validity", o.CertValidity, "self-signed: serving certificate lifetime; renewed at two thirds.")
	fs.DurationVar(&o.CAOverlap, "ca-overlap", o.CAOverlap, "self-signed: how long the previous CA stays trusted after a rotation (longer than any replica needs to switch).")
	fs.DurationVar(&o.CertSettle, "cert-settle", o.CertSettle, "self-signed: how long a new CA must be in the webhook configurations before its certificate is served (the API server reads them a moment late).")
	fs.DurationVar(&o.CertResync, "cert-resync", o.CertResync, "self-signed: the longest time between two checks of the Secret and the webhook configurations.")
}

func (o *PolicyOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.MinRetryDuration, flagMinRetryDuration, o.MinRetryDuration, "Log-backup default minRetryDuration (env "+EnvMinRetryDuration+").")
	fs.Int64Var(&o.MaxRetries, flagMaxRetries, o.MaxRetries, "Log-backup default maxRetryTimes (env "+EnvMaxRetries+").")
	fs.StringVar(&o.RetryTimeout, flagRetryTimeout, o.RetryTimeout, "Log-backup default retryTimeout (env "+EnvRetryTimeout+").")
	for flag, env := range map[string]string{flagMinRetryDuration: EnvMinRetryDuration, flagMaxRetries: EnvMaxRetries, flagRetryTimeout: EnvRetryTimeout} {
		_ = fs.SetAnnotation(flag, envAnnotation, []string{env})
	}
	fs.BoolVar(&o.ReplaceSchemaDefaults, "replace-schema-defaults", o.ReplaceSchemaDefaults,
		"Treat a log Backup's policy holding exactly the CRD's snapshot defaults (300s/2/30m) as unset on create.")
	fs.StringVar(&o.NamespacePolicies, "namespace-policies", o.NamespacePolicies,
		"ConfigMap (NAMESPACE/NAME) whose entries override the log-backup defaults per namespace: key a namespace, value a policy in YAML; empty: none.")
}

func (o *ReconcilerOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Run the reconciler on one replica at a time (the webhook serves on all).")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "Namespace of the leader-election Lease; empty: the pod's.")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "Name of the leader-election Lease.")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles, "Backups reconciled in parallel.")
	fs.StringSliceVar(&o.WatchNamespaces, "watch-namespaces", o.WatchNamespaces,
		"Reconcile only the Backups of these namespaces (comma-separated); empty: every namespace.")
	fs.IntVar(&o.WriteGuardLimit, "write-guard-limit", o.WriteGuardLimit,
		"Writes of one Backup allowed in a burst before the reconciler stops writing it (a write loop's last line of defence); 0 turns the guard off.")
	fs.DurationVar(&o.WriteGuardWindow, "write-guard-window", o.WriteGuardWindow, "How long the write guard takes to allow --write-guard-limit writes again.")
	fs.DurationVar(&o.WriteGuardCooldown, "write-guard-cooldown", o.WriteGuardCooldown, "How long a Backup that tripped the write guard is left unwritten.")
	fs.DurationVar(&o.WatchInterval, "watch-interval", o.WatchInterval,
		"How often a running log backup is looked at although nothing changed: its task in PD (with the kernel probe) and its checkpoint lag.")
	fs.DurationVar(&o.CheckpointLagWarning, "checkpoint-lag-warning", o.CheckpointLagWarning,
		"Checkpoint lag of a running log backup past which it gets a CheckpointLagging Warning Event (and a CheckpointCaughtUp Normal one when it recovers).")
	fs.StringVar(&o.Mode, "reconciler-mode", o.Mode,
		"enforce: retry log backups; shadow: decide as usual but only report what would be done (Would* Events and metrics), writing nothing to Backups and deleting no Job.")
}

func (o *KernelOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.KernelProbe, "kernel-probe", o.KernelProbe,
		"Before a retry, read the log backup task the cluster records: "+KernelProbePDEtcd+" (PD's etcd), or empty for off. "+
			"A failed log-start whose task exists is then recovered instead of re-run.")
	fs.StringVar(&o.KernelPDEndpoint, "kernel-pd-endpoint", o.KernelPDEndpoint,
		"PD's etcd URL; {cluster} and {namespace} are spec.br.cluster and spec.br.clusterNamespace (default: the Backup's namespace).")
	fs.StringVar(&o.KernelTLSSecret, "kernel-tls-secret", o.KernelTLSSecret,
		"Secret in the cluster's namespace with the client TLS for PD (ca.crt, tls.crt, tls.key), e.g. {cluster}-cluster-client-secret; empty: no TLS.")
	fs.DurationVar(&o.KernelProbeTimeout, "kernel-probe-timeout", o.KernelProbeTimeout, "Longest a read from PD may take; past it the retry goes ahead without it.")
	fs.DurationVar(&o.KernelProbeCacheTTL, "kernel-probe-cache-ttl", o.KernelProbeCacheTTL, "How long a task read from PD is reused.")
}

// Values of --reconciler-mode.
const (
	ReconcilerModeEnforce = "enforce"
	ReconcilerModeShadow  = "shadow"
)

// Values of --resume-hand-off.
const (
	ResumeHandOffAuto = "auto"
	ResumeHandOffOn   = "on"
	ResumeHandOffOff  = "off"
)

// KernelProbePDEtcd turns on the kernel probe: PD's embedded etcd, read with the etcd v3 client.
const KernelProbePDEtcd = "pd-etcd"

var kernelProbes = []string{"", KernelProbePDEtcd}

// BindEnv sets, in one pass over fs, every flag that has an environment variable and was
// not given from that variable: flags win over environment variables, which win over the
// built-in values. The value is parsed as the flag's own type; one that does not parse
// is reported by Validate.
func (o *Options) BindEnv(fs *pflag.FlagSet, getenv func(string) string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	fs.VisitAll(func(f *pflag.Flag) {
		envs := f.Annotations[envAnnotation]
		if len(envs) == 0 || f.Changed {
			return
		}
		if v := getenv(envs[0]); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				o.envErrs = append(o.envErrs, field.Invalid(envPath(f.Name, envs[0]), v, "must be "+f.Value.Type()))
			}
		}
	})
}

// envPath names a flag that an environment variable may set.
func envPath(flag, env string) *field.Path { return field.NewPath("--" + flag + " (or " + env + ")") }

// Validate checks every option and returns all problems at once; paths name the flags.
func (o *Options) Validate() field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, o.envErrs...)
	errs = append(errs, o.ServerOptions.Validate(nil)...)
	if o.has(ComponentWebhook) {
		errs = append(errs, o.WebhookOptions.Validate(nil)...)
		errs = append(errs, o.CertOptions.Validate(nil)...)
	} else {
		// Checked whatever runs: a bad value is a bad value.
		errs = append(errs, o.WebhookOptions.Validate(nil)...)
		errs = append(errs, o.CertOptions.validateMode(nil)...)
	}
	errs = append(errs, o.ReconcilerOptions.Validate(nil, o.has(ComponentReconciler))...)
	return append(errs, o.DecisionOptions.Validate(nil)...)
}

func (o *ServerOptions) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		errs = append(errs, field.Invalid(fldPath.Child("--kube-api-qps"), o.KubeAPIQPS, "--kube-api-qps and --kube-api-burst must be positive"))
	}
	if len(o.Components) == 0 {
		errs = append(errs, field.Required(fldPath.Child("--components"), "name at least one of "+strings.Join(knownComponents, ", ")))
	}
	for i, c := range o.Components {
		if !slices.Contains(knownComponents, c) {
			errs = append(errs, field.NotSupported(fldPath.Child("--components").Index(i), c, knownComponents))
		}
	}
	return errs
}

func (o *WebhookOptions) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if o.WebhookPort < 1 || o.WebhookPort > 65535 {
		errs = append(errs, field.Invalid(fldPath.Child("--webhook-port"), o.WebhookPort, "must be between 1 and 65535"))
	}
	if o.TLSMinVersion != "1.2" && o.TLSMinVersion != "1.3" {
		errs = append(errs, field.NotSupported(fldPath.Child("--tls-min-version"), o.TLSMinVersion, []string{"1.2", "1.3"}))
	}
	return errs
}

// validateMode checks what is checked whether or not the webhook runs.
func (o *CertOptions) validateMode(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if !slices.Contains(certModes, o.CertMode) {
		errs = append(errs, field.NotSupported(fldPath.Child("--cert-mode"), o.CertMode, certModes))
	}
	if o.CertPollInterval <= 0 {
		errs = append(errs, field.Invalid(fldPath.Child("--cert-poll-interval"), o.CertPollInterval.String(), "must be greater than 0"))
	}
	return errs
}

// Validate checks the certificate options of a server that runs the webhook.
func (o *CertOptions) Validate(fldPath *field.Path) field.ErrorList {
	errs := o.validateMode(fldPath)
	if o.CertMode == CertModeSelfSigned {
		return append(errs, o.SelfSignedOptions.Validate(fldPath)...)
	}
	if o.CertDir == "" {
		errs = append(errs, field.Required(fldPath.Child("--cert-dir"), "the webhook needs a serving certificate"))
	}
	return errs
}

func (o *SelfSignedOptions) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if o.CertNamespace == "" {
		errs = append(errs, field.Required(fldPath.Child("--cert-namespace"), "self-signed mode keeps its Secret in a namespace (set it, or $POD_NAMESPACE)"))
	}
	if err := o.config().Validate(); err != nil {
		errs = append(errs, field.Invalid(fldPath.Child("--self-signed-*"), "", err.Error()))
	}
	return errs
}

// Validate checks the reconciler's options; leader election only when it runs.
func (o *ReconcilerOptions) Validate(fldPath *field.Path, runs bool) field.ErrorList {
	var errs field.ErrorList
	if o.MaxConcurrentReconciles < 1 {
		errs = append(errs, field.Invalid(fldPath.Child("--max-concurrent-reconciles"), o.MaxConcurrentReconciles, "must be at least 1"))
	}
	for i, ns := range o.WatchNamespaces {
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, field.Invalid(fldPath.Child("--watch-namespaces").Index(i), ns, msg))
		}
	}
	if runs && o.LeaderElect && o.LeaderElectionID == "" {
		errs = append(errs, field.Required(fldPath.Child("--leader-election-id"), "leader election needs a Lease name"))
	}
	if o.WriteGuardLimit < 0 {
		errs = append(errs, field.Invalid(fldPath.Child("--write-guard-limit"), o.WriteGuardLimit, "must be 0 (off) or more"))
	}
	if o.WriteGuardLimit > 0 && o.WriteGuardWindow <= 0 {
		errs = append(errs, field.Invalid(fldPath.Child("--write-guard-window"), o.WriteGuardWindow.String(), "must be greater than 0"))
	}
	if o.WriteGuardLimit > 0 && o.WriteGuardCooldown <= 0 {
		errs = append(errs, field.Invalid(fldPath.Child("--write-guard-cooldown"), o.WriteGuardCooldown.String(), "must be greater than 0"))
	}
	if o.WatchInterval <= 0 {
		errs = append(errs, field.Invalid(fldPath.Child("--watch-interval"), o.WatchInterval.String(), "must be greater than 0"))
	}
	if o.CheckpointLagWarning <= 0 {
		errs = append(errs, field.Invalid(fldPath.Child("--checkpoint-lag-warning"), o.CheckpointLagWarning.String(), "must be greater than 0"))
	}
	if o.Mode != ReconcilerModeEnforce && o.Mode != ReconcilerModeShadow {
		errs = append(errs, field.NotSupported(fldPath.Child("--reconciler-mode"), o.Mode, []string{ReconcilerModeEnforce, ReconcilerModeShadow}))
	}
	return errs
}

// namespacePolicies splits --namespace-policies; ok is false when it is not NAMESPACE/NAME.
func (o *PolicyOptions) namespacePolicies() (namespace, name string, ok bool) {
	namespace, name, ok = strings.Cut(o.NamespacePolicies, "/")
	return namespace, name, ok && namespace != "" && name != "" && !strings.Contains(name, "/")
}

func (o *KernelOptions) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if !slices.Contains(kernelProbes, o.KernelProbe) {
		return append(errs, field.NotSupported(fldPath.Child("--kernel-probe"), o.KernelProbe, []string{"(empty: off)", KernelProbePDEtcd}))
	}
	if o.KernelProbe == "" {
		return nil
	}
	if err := kernel.ValidateTemplates(o.KernelPDEndpoint, o.KernelTLSSecret); err != nil {
		errs = append(errs, field.Invalid(fldPath.Child("--kernel-pd-endpoint"), o.KernelPDEndpoint+" / "+o.KernelTLSSecret, err.Error()))
	}
	if o.KernelProbeTimeout <= 0 || o.KernelProbeCacheTTL <= 0 {
		errs = append(errs, field.Invalid(fldPath.Child("--kernel-probe-timeout"), o.KernelProbeTimeout.String(),
			"--kernel-probe-timeout and --kernel-probe-cache-ttl must be greater than 0"))
	}
	return errs
}

// DefaultsConfig parses the policy options into the configuration the webhooks and the
// reconciler share. The defaults must pass the same validation as a policy on an object.
func (o *PolicyOptions) DefaultsConfig() (defaults.Config, field.ErrorList) {
	var errs field.ErrorList
	cfg := defaults.Config{ReplaceSchemaDefaults: o.ReplaceSchemaDefaults}
	paths := map[string]*field.Path{
		defaults.FieldMinRetryDuration: envPath(flagMinRetryDuration, EnvMinRetryDuration),
		defaults.FieldMaxRetryTimes:    envPath(flagMaxRetries, EnvMaxRetries),
		defaults.FieldRetryTimeout:     envPath(flagRetryTimeout, EnvRetryTimeout),
	}
	parse := func(name, value string) time.Duration {
		d, detail := defaults.ParseDuration(value)
		if detail != "" {
			errs = append(errs, field.Invalid(paths[name], value, detail))
		}
		return d
	}
	cfg.LogDefaults.MinRetryDuration = parse(defaults.FieldMinRetryDuration, o.MinRetryDuration)
	cfg.LogDefaults.RetryTimeout = parse(defaults.FieldRetryTimeout, o.RetryTimeout)
	cfg.LogDefaults.MaxRetryTimes = o.MaxRetries
	if len(errs) > 0 {
		return cfg, errs
	}
	// The same rules as a policy on an object (range, overflow), reported per flag.
	for _, e := range cfg.Validate(field.NewPath("defaults")) {
		name := strings.TrimPrefix(e.Field, "defaults.")
		if p, ok := paths[name]; ok {
			e.Field = p.String()
		}
		errs = append(errs, e)
	}
	if _, _, ok := o.namespacePolicies(); o.NamespacePolicies != "" && !ok {
		errs = append(errs, field.Invalid(field.NewPath("--namespace-policies"), o.NamespacePolicies, "must be NAMESPACE/NAME of a ConfigMap"))
	}
	return cfg, errs
}

// config is the self-signed certificates' configuration.
func (o *SelfSignedOptions) config() certs.SelfSignedConfig {
	names := o.CertDNSNames
	if len(names) == 0 {
		svc, ns := o.ServiceName, o.CertNamespace
		names = []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"}
	}
	return certs.SelfSignedConfig{Names: names, CAValidity: o.CAValidity, CertValidity: o.CertValidity, Overlap: o.CAOverlap}
}

// has reports whether a component is selected.
func (o *ServerOptions) has(component string) bool { return slices.Contains(o.Components, component) }

// addr is the webhook listen address.
func (o *WebhookOptions) addr() string { return fmt.Sprintf("%s:%d", o.WebhookHost, o.WebhookPort) }
