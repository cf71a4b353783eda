package app

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/rest"

	"github.com/tidb-backup-guard/tidb-backup-guard/certs"
	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
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

// Options are the settings of `tidb-backup-guard serve`.
type Options struct {
	// WebhookHost and WebhookPort are where the webhook server listens.
	WebhookHost string
	WebhookPort int
	// CertMode selects the certificate source: files, cert-manager or self-signed.
	CertMode string
	// CertDir holds tls.crt and tls.key (files and cert-manager modes).
	CertDir string
	// The self-signed mode's Secret, names and lifetimes.
	CertNamespace, CertSecretName       string
	ServiceName                         string
	CertDNSNames                        []string
	MutatingConfigName                  string
	ValidatingConfigName                string
	CAValidity, CertValidity, CAOverlap time.Duration
	CertResync, CertSettle              time.Duration
	// CertPollInterval is how often the certificate files are re-read without a file event.
	CertPollInterval time.Duration
	// TLSMinVersion is "1.2" or "1.3".
	TLSMinVersion string
	// EnableHTTP2 offers h2 on the webhook server.
	EnableHTTP2 bool
	// MetricsBindAddress and HealthProbeBindAddress serve /metrics and /healthz, /readyz;
	// "0" turns one off.
	MetricsBindAddress     string
	HealthProbeBindAddress string
	// Components selects what runs.
	Components []string

	// The log-backup defaults, as written (parsed in Validate).
	MinRetryDuration string
	MaxRetries       string
	RetryTimeout     string
	// ReplaceSchemaDefaults replaces a log Backup's policy that holds exactly the CRD's
	// snapshot defaults.
	ReplaceSchemaDefaults bool

	// Kubeconfig is the kubeconfig file of the reconciler; empty: $KUBECONFIG, then
	// in-cluster.
	Kubeconfig string
	// LeaderElect makes only one replica run the reconciler.
	LeaderElect bool
	// LeaderElectionNamespace holds the lease; empty: the pod's namespace.
	LeaderElectionNamespace string
	// LeaderElectionID names the lease.
	LeaderElectionID string
	// MaxConcurrentReconciles bounds parallel reconciles.
	MaxConcurrentReconciles int
	// KubeAPIQPS and KubeAPIBurst limit the server's API requests (client-side).
	KubeAPIQPS   float32
	KubeAPIBurst int
	// NonRetryableErrors are failure substrings the reconciler does not retry.
	NonRetryableErrors []string
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
	// ResumeHandOff says whether a running log backup paused by an error may be handed to
	// TiDB Operator for log-resume: ResumeHandOffAuto (whether its Backup CRD has
	// spec.logSubcommand, which came with log-pause and log-resume), "on" or "off".
	ResumeHandOff string

	// RestConfig, when set (by tests), is used instead of Kubeconfig.
	RestConfig *rest.Config
	// AllowSeveralInProcess lets tests run more than one App in one process (controller
	// names are otherwise unique per process, for their metrics).
	AllowSeveralInProcess bool
}

// NewOptions returns the defaults of every option.
func NewOptions() *Options {
	d := defaults.BuiltinLogDefaults
	return &Options{
		WebhookPort:             9443,
		CertMode:                CertModeFiles,
		CertDir:                 "/tmp/k8s-webhook-server/serving-certs",
		CertNamespace:           os.Getenv("POD_NAMESPACE"),
		CertSecretName:          "tidb-backup-guard-webhook-cert",
		ServiceName:             "tidb-backup-guard",
		MutatingConfigName:      "tidb-backup-guard-mutating",
		ValidatingConfigName:    "tidb-backup-guard-validating",
		CAValidity:              365 * 24 * time.Hour,
		CertValidity:            90 * 24 * time.Hour,
		CAOverlap:               10 * time.Minute,
		CertResync:              time.Minute,
		CertSettle:              5 * time.Second,
		CertPollInterval:        10 * time.Second,
		TLSMinVersion:           "1.2",
		MetricsBindAddress:      ":8080",
		HealthProbeBindAddress:  ":8081",
		Components:              []string{ComponentWebhook, ComponentReconciler},
		MinRetryDuration:        defaults.FormatDuration(d.MinRetryDuration),
		MaxRetries:              strconv.FormatInt(d.MaxRetryTimes, 10),
		RetryTimeout:            defaults.FormatDuration(d.RetryTimeout),
		ReplaceSchemaDefaults:   true,
		LeaderElectionID:        "tidb-backup-guard-reconciler",
		MaxConcurrentReconciles: 4,
		KubeAPIQPS:              50,
		KubeAPIBurst:            100,
		NonRetryableErrors:      slices.Clone(reconciler.DefaultNonRetryable),
		KernelPDEndpoint:        kernel.DefaultEndpointTemplate,
		KernelProbeTimeout:      kernel.DefaultTimeout,
		KernelProbeCacheTTL:     kernel.DefaultCacheTTL,
		WriteGuardLimit:         reconciler.DefaultWriteGuardLimit,
		WriteGuardWindow:        reconciler.DefaultWriteGuardWindow,
		WriteGuardCooldown:      reconciler.DefaultWriteGuardCooldown,
		WatchInterval:           reconciler.DefaultWatchInterval,
		CheckpointLagWarning:    reconciler.DefaultLagWarning,
		ResumeHandOff:           ResumeHandOffAuto,
	}
}

// Flag names of the policy defaults (referred to by Complete and in errors).
const (
	flagMinRetryDuration = "log-backup-min-retry-duration"
	flagMaxRetries       = "log-backup-max-retries"
	flagRetryTimeout     = "log-backup-retry-timeout"
)

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.WebhookHost, "webhook-host", o.WebhookHost, "Address the webhook server binds to; empty means all interfaces.")
	fs.IntVar(&o.WebhookPort, "webhook-port", o.WebhookPort, "Port of the webhook server (HTTPS).")
	fs.StringVar(&o.CertMode, "cert-mode", o.CertMode, "Serving certificate source: files (--cert-dir), cert-manager (--cert-dir, mounted from cert-manager's Secret) or self-signed (a CA kept in a Secret, injected into the webhook configurations, rotated).")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "Directory holding the serving certificate as tls.crt and tls.key; reloaded on change.")
	fs.StringVar(&o.CertNamespace, "cert-namespace", o.CertNamespace, "self-signed: namespace of the certificate Secret (default: $POD_NAMESPACE).")
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
	fs.DurationVar(&o.CertPollInterval, "cert-poll-interval", o.CertPollInterval, "How often the certificate files are re-read even without a file event.")
	fs.StringVar(&o.TLSMinVersion, "tls-min-version", o.TLSMinVersion, "Minimum TLS version of the webhook server: 1.2 or 1.3.")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", o.EnableHTTP2, "Offer HTTP/2 on the webhook server (off: the API server uses HTTP/1.1).")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address of the Prometheus /metrics endpoint; 0 turns it off.")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address of /healthz and /readyz; 0 turns them off.")
	fs.StringSliceVar(&o.Components, "components", o.Components, "What to run: "+strings.Join(knownComponents, ",")+". The webhook alone needs no Kubernetes API access.")
	fs.StringVar(&o.MinRetryDuration, flagMinRetryDuration, o.MinRetryDuration, "Log-backup default minRetryDuration (env "+EnvMinRetryDuration+").")
	fs.StringVar(&o.MaxRetries, flagMaxRetries, o.MaxRetries, "Log-backup default maxRetryTimes (env "+EnvMaxRetries+").")
	fs.StringVar(&o.RetryTimeout, flagRetryTimeout, o.RetryTimeout, "Log-backup default retryTimeout (env "+EnvRetryTimeout+").")
	fs.BoolVar(&o.ReplaceSchemaDefaults, "replace-schema-defaults", o.ReplaceSchemaDefaults,
		"Treat a log Backup's policy holding exactly the CRD's snapshot defaults (300s/2/30m) as unset on create.")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig of the reconciler; empty: $KUBECONFIG, then in-cluster.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Run the reconciler on one replica at a time (the webhook serves on all).")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "Namespace of the leader-election Lease; empty: the pod's.")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "Name of the leader-election Lease.")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles, "Backups reconciled in parallel.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Sustained API requests per second (client-side limit; client-go's own default is 5).")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "API request burst above --kube-api-qps.")
	fs.StringSliceVar(&o.NonRetryableErrors, "non-retryable-errors", o.NonRetryableErrors,
		"Substrings of a failure's reason or message that retrying cannot fix (case-insensitive); an empty value retries everything.")
	fs.StringVar(&o.KernelProbe, "kernel-probe", o.KernelProbe,
		"Before a retry, read the log backup task the cluster records: "+KernelProbePDEtcd+" (PD's etcd), or empty for off. "+
			"A failed log-start whose task exists is then recovered instead of re-run.")
	fs.StringVar(&o.KernelPDEndpoint, "kernel-pd-endpoint", o.KernelPDEndpoint,
		"PD's etcd URL; {cluster} and {namespace} are spec.br.cluster and spec.br.clusterNamespace (default: the Backup's namespace).")
	fs.StringVar(&o.KernelTLSSecret, "kernel-tls-secret", o.KernelTLSSecret,
		"Secret in the cluster's namespace with the client TLS for PD (ca.crt, tls.crt, tls.key), e.g. {cluster}-cluster-client-secret; empty: no TLS.")
	fs.DurationVar(&o.KernelProbeTimeout, "kernel-probe-timeout", o.KernelProbeTimeout, "Longest a read from PD may take; past it the retry goes ahead without it.")
	fs.DurationVar(&o.KernelProbeCacheTTL, "kernel-probe-cache-ttl", o.KernelProbeCacheTTL, "How long a task read from PD is reused.")
	fs.IntVar(&o.WriteGuardLimit, "write-guard-limit", o.WriteGuardLimit,
		"Writes of one Backup allowed in a burst before the reconciler stops writing it (a write loop's last line of defence); 0 turns the guard off.")
	fs.DurationVar(&o.WriteGuardWindow, "write-guard-window", o.WriteGuardWindow, "How long the write guard takes to allow --write-guard-limit writes again.")
	fs.DurationVar(&o.WriteGuardCooldown, "write-guard-cooldown", o.WriteGuardCooldown, "How long a Backup that tripped the write guard is left unwritten.")
	fs.DurationVar(&o.WatchInterval, "watch-interval", o.WatchInterval,
		"How often a running log backup is looked at although nothing changed: its task in PD (with the kernel probe) and its checkpoint lag.")
	fs.DurationVar(&o.CheckpointLagWarning, "checkpoint-lag-warning", o.CheckpointLagWarning,
		"Checkpoint lag of a running log backup past which it gets a CheckpointLagging Warning Event (and a CheckpointCaughtUp Normal one when it recovers).")
	fs.StringVar(&o.ResumeHandOff, "resume-hand-off", o.ResumeHandOff,
		"Whether a log backup paused by an error is handed to TiDB Operator for log-resume: auto (if its Backup CRD has spec.logSubcommand, as from v1.6.1), on or off (only record and alert).")
}

// Values of --resume-hand-off.
const (
	ResumeHandOffAuto = "auto"
	ResumeHandOffOn   = "on"
	ResumeHandOffOff  = "off"
)

// KernelProbePDEtcd turns on the kernel probe: PD's embedded etcd, read with the etcd v3 client.
const KernelProbePDEtcd = "pd-etcd"

var kernelProbes = []string{"", KernelProbePDEtcd}

// Complete takes the policy defaults from the environment where the flag was not given:
// flags win over environment variables, which win over the built-in values.
func (o *Options) Complete(fs *pflag.FlagSet, getenv func(string) string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, e := range []struct {
		flag, env string
		dst       *string
	}{
		{flagMinRetryDuration, EnvMinRetryDuration, &o.MinRetryDuration},
		{flagMaxRetries, EnvMaxRetries, &o.MaxRetries},
		{flagRetryTimeout, EnvRetryTimeout, &o.RetryTimeout},
	} {
		if v := getenv(e.env); v != "" && (fs == nil || !fs.Changed(e.flag)) {
			*e.dst = v
		}
	}
}

// Validate checks every option and returns all problems at once; paths name the flags.
func (o *Options) Validate() field.ErrorList {
	var errs field.ErrorList
	if o.WebhookPort < 1 || o.WebhookPort > 65535 {
		errs = append(errs, field.Invalid(field.NewPath("--webhook-port"), o.WebhookPort, "must be between 1 and 65535"))
	}
	if o.TLSMinVersion != "1.2" && o.TLSMinVersion != "1.3" {
		errs = append(errs, field.NotSupported(field.NewPath("--tls-min-version"), o.TLSMinVersion, []string{"1.2", "1.3"}))
	}
	if !slices.Contains(certModes, o.CertMode) {
		errs = append(errs, field.NotSupported(field.NewPath("--cert-mode"), o.CertMode, certModes))
	}
	if o.has(ComponentWebhook) && o.CertMode != CertModeSelfSigned && o.CertDir == "" {
		errs = append(errs, field.Required(field.NewPath("--cert-dir"), "the webhook needs a serving certificate"))
	}
	if o.has(ComponentWebhook) && o.CertMode == CertModeSelfSigned {
		if o.CertNamespace == "" {
			errs = append(errs, field.Required(field.NewPath("--cert-namespace"), "self-signed mode keeps its Secret in a namespace (set it, or $POD_NAMESPACE)"))
		}
		if err := o.selfSignedConfig().Validate(); err != nil {
			errs = append(errs, field.Invalid(field.NewPath("--self-signed-*"), "", err.Error()))
		}
	}
	if o.CertPollInterval <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("--cert-poll-interval"), o.CertPollInterval.String(), "must be greater than 0"))
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		errs = append(errs, field.Invalid(field.NewPath("--kube-api-qps"), o.KubeAPIQPS, "--kube-api-qps and --kube-api-burst must be positive"))
	}
	if o.MaxConcurrentReconciles < 1 {
		errs = append(errs, field.Invalid(field.NewPath("--max-concurrent-reconciles"), o.MaxConcurrentReconciles, "must be at least 1"))
	}
	if o.has(ComponentReconciler) && o.LeaderElect && o.LeaderElectionID == "" {
		errs = append(errs, field.Required(field.NewPath("--leader-election-id"), "leader election needs a Lease name"))
	}
	if !slices.Contains(kernelProbes, o.KernelProbe) {
		errs = append(errs, field.NotSupported(field.NewPath("--kernel-probe"), o.KernelProbe, []string{"(empty: off)", KernelProbePDEtcd}))
	} else if o.KernelProbe != "" {
		if err := kernel.ValidateTemplates(o.KernelPDEndpoint, o.KernelTLSSecret); err != nil {
			errs = append(errs, field.Invalid(field.NewPath("--kernel-pd-endpoint"), o.KernelPDEndpoint+" / "+o.KernelTLSSecret, err.Error()))
		}
		if o.KernelProbeTimeout <= 0 || o.KernelProbeCacheTTL <= 0 {
			errs = append(errs, field.Invalid(field.NewPath("--kernel-probe-timeout"), o.KernelProbeTimeout.String(),
				"--kernel-probe-timeout and --kernel-probe-cache-ttl must be greater than 0"))
		}
	}
	if len(o.Components) == 0 {
		errs = append(errs, field.Required(field.NewPath("--components"), "name at least one of "+strings.Join(knownComponents, ", ")))
	}
	for i, c := range o.Components {
		if !slices.Contains(knownComponents, c) {
			errs = append(errs, field.NotSupported(field.NewPath("--components").Index(i), c, knownComponents))
		}
	}
	if o.WriteGuardLimit < 0 {
		errs = append(errs, field.Invalid(field.NewPath("--write-guard-limit"), o.WriteGuardLimit, "must be 0 (off) or more"))
	}
	if o.WriteGuardLimit > 0 && o.WriteGuardWindow <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("--write-guard-window"), o.WriteGuardWindow.String(), "must be greater than 0"))
	}
	if o.WriteGuardLimit > 0 && o.WriteGuardCooldown <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("--write-guard-cooldown"), o.WriteGuardCooldown.String(), "must be greater than 0"))
	}
	if o.WatchInterval <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("--watch-interval"), o.WatchInterval.String(), "must be greater than 0"))
	}
	switch o.ResumeHandOff {
	case ResumeHandOffAuto, ResumeHandOffOn, ResumeHandOffOff:
	default:
		errs = append(errs, field.NotSupported(field.NewPath("--resume-hand-off"), o.ResumeHandOff,
			[]string{ResumeHandOffAuto, ResumeHandOffOn, ResumeHandOffOff}))
	}
	if o.CheckpointLagWarning <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("--checkpoint-lag-warning"), o.CheckpointLagWarning.String(), "must be greater than 0"))
	}
	_, policyErrs := o.DefaultsConfig()
	return append(errs, policyErrs...)
}

// DefaultsConfig parses the policy options into the configuration the webhooks and the
// reconciler share. The defaults must pass the same validation as a policy on an object.
func (o *Options) DefaultsConfig() (defaults.Config, field.ErrorList) {
	var errs field.ErrorList
	cfg := defaults.Config{ReplaceSchemaDefaults: o.ReplaceSchemaDefaults}
	paths := map[string]*field.Path{
		defaults.FieldMinRetryDuration: field.NewPath("--" + flagMinRetryDuration + " (or " + EnvMinRetryDuration + ")"),
		defaults.FieldMaxRetryTimes:    field.NewPath("--" + flagMaxRetries + " (or " + EnvMaxRetries + ")"),
		defaults.FieldRetryTimeout:     field.NewPath("--" + flagRetryTimeout + " (or " + EnvRetryTimeout + ")"),
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
	n, err := strconv.ParseInt(o.MaxRetries, 10, 64)
	if err != nil {
		errs = append(errs, field.Invalid(paths[defaults.FieldMaxRetryTimes], o.MaxRetries, "must be an integer"))
	}
	cfg.LogDefaults.MaxRetryTimes = n
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
	return cfg, errs
}

// selfSignedConfig is the self-signed certificates' configuration.
func (o *Options) selfSignedConfig() certs.SelfSignedConfig {
	names := o.CertDNSNames
	if len(names) == 0 {
		svc, ns := o.ServiceName, o.CertNamespace
		names = []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"}
	}
	return certs.SelfSignedConfig{Names: names, CAValidity: o.CAValidity, CertValidity: o.CertValidity, Overlap: o.CAOverlap}
}

// has reports whether a component is selected.
func (o *Options) has(component string) bool { return slices.Contains(o.Components, component) }

// webhookAddr is the webhook listen address.
func (o *Options) webhookAddr() string { return fmt.Sprintf("%s:%d", o.WebhookHost, o.WebhookPort) }
