package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tidb-backup-guard/tidb-backup-guard/certs"
	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/defaults/nspolicy"
	"github.com/tidb-backup-guard/tidb-backup-guard/webhook"
)

// App is a configured tidb-backup-guard server, ready to Start.
type App struct {
	opts     *Options
	log      logr.Logger
	config   defaults.Config
	registry *prometheus.Registry
	certs    certs.Source
	webhook  *webhook.Server
	manager  manager.Manager
	// nsPolicies watches the namespace-policies ConfigMap (nil: none configured).
	nsPolicies *nspolicy.Watcher
	now        func() time.Time
}

// Hook changes how New builds an App. Tests use them; the command passes none.
type Hook func(*hooks)

type hooks struct {
	restConfig       *rest.Config
	severalInProcess bool
}

// WithRestConfig makes the App use c for the API server, not a kubeconfig.
func WithRestConfig(c *rest.Config) Hook { return func(h *hooks) { h.restConfig = c } }

// WithSeveralInProcess lets more than one App run in one process (controller names are
// otherwise unique per process, for their metrics).
func WithSeveralInProcess() Hook { return func(h *hooks) { h.severalInProcess = true } }

// New validates the options and builds every selected component. Nothing listens or
// contacts the API server until Start.
func New(o *Options, log logr.Logger, hs ...Hook) (*App, error) {
	if errs := o.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid options: %w", errs.ToAggregate())
	}
	h := &hooks{}
	for _, hook := range hs {
		hook(h)
	}
	cfg, _ := o.DefaultsConfig()
	log = capVerbosity(log)
	a := &App{opts: o, log: log, config: cfg, registry: prometheus.NewRegistry(), now: time.Now}
	// The webhooks and the reconciler ask one Resolver, so a namespace's override means
	// the same to both.
	var policies defaults.Resolver = cfg
	if ns, name, ok := o.namespacePolicies(); ok {
		restConfig, err := h.restConfigFor(o)
		if err != nil {
			return nil, err
		}
		cs, err := kubernetes.NewForConfig(restConfig)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client for namespace policies: %w", err)
		}
		np := defaults.NewNamespacePolicies(cfg)
		a.nsPolicies = nspolicy.New(cs, ns, name, np, a.registry, log.WithName("namespace-policies"))
		policies = np
	}
	if o.has(ComponentWebhook) {
		src, err := newCertSource(o, h, certs.NewMetrics(a.registry), log.WithName("certs"))
		if err != nil {
			return nil, err
		}
		a.certs = src
		mux := http.NewServeMux()
		(&webhook.Webhooks{
			Config:   cfg,
			Policies: policies,
			Log:      log.WithName("webhook"),
			Metrics:  webhook.NewMetrics(a.registry),
		}).Register(mux)
		minTLS := uint16(tls.VersionTLS12)
		if o.TLSMinVersion == "1.3" {
			minTLS = tls.VersionTLS13
		}
		a.webhook = webhook.NewServer(webhook.ServerOptions{
			Addr:           o.addr(),
			GetCertificate: src.GetCertificate,
			MinTLSVersion:  minTLS,
			EnableHTTP2:    o.EnableHTTP2,
			Handler:        mux,
			Log:            log.WithName("webhook"),
		})
	}
	if o.has(ComponentReconciler) {
		mgr, err := newReconcilerManager(o, h, cfg, policies, a.registry, log)
		if err != nil {
			return nil, err
		}
		a.manager = mgr
	}
	log.Info("Configured", "components", o.Components, "logBackupDefaults", cfg.LogDefaults.String(),
		"replaceSchemaDefaults", cfg.ReplaceSchemaDefaults)
	return a, nil
}

// newCertSource builds the certificate source --cert-mode selects.
func newCertSource(o *Options, h *hooks, metrics *certs.Metrics, log logr.Logger) (certs.Source, error) {
	switch o.CertMode {
	case CertModeSelfSigned:
		cfg, err := h.restConfigFor(o)
		if err != nil {
			return nil, err
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client for self-signed certificates: %w", err)
		}
		return certs.NewSelfSignedSource(certs.SelfSignedOptions{
			Client: cs, Namespace: o.CertNamespace, SecretName: o.CertSecretName,
			MutatingConfig: o.MutatingConfigName, ValidatingConfig: o.ValidatingConfigName,
			Config: o.SelfSignedOptions.config(), Clock: clock.RealClock{}, Resync: o.CertResync, Settle: o.CertSettle,
			Metrics: metrics, Log: log,
		})
	default:
		// files and cert-manager: cert-manager writes the Secret that is mounted at
		// --cert-dir; serving it is the same as serving any files.
		return certs.NewFileSource(o.CertDir, o.CertPollInterval, metrics, log)
	}
}

// Start runs every component until ctx is done or one of them fails.
func (a *App) Start(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if a.nsPolicies != nil {
		g.Go(func() error { return a.nsPolicies.Start(ctx) })
	}
	if a.webhook != nil {
		g.Go(func() error { return a.certs.Start(ctx) })
		g.Go(func() error { return a.webhook.Start(ctx) })
	}
	if a.manager != nil {
		g.Go(func() error { return a.manager.Start(ctx) })
	}
	if a.opts.HealthProbeBindAddress != "0" {
		g.Go(func() error { return a.serveHTTP(ctx, "health probes", a.opts.HealthProbeBindAddress, a.healthMux()) })
	}
	if a.opts.MetricsBindAddress != "0" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{ctrlmetrics.Registry, a.registry}, promhttp.HandlerOpts{}))
		g.Go(func() error { return a.serveHTTP(ctx, "metrics", a.opts.MetricsBindAddress, mux) })
	}
	return g.Wait()
}

// Ready reports nil when every selected component can do its work: the webhook server
// listens and holds a certificate valid now. The reconciler does not gate readiness: a
// replica that is not the leader must still serve the webhooks.
func (a *App) Ready() error {
	if a.nsPolicies != nil && !a.nsPolicies.Synced() {
		// Until then a Backup would get the server's defaults in place of its namespace's.
		return errors.New("the namespace policies ConfigMap has not been read yet")
	}
	if a.webhook == nil {
		return nil
	}
	if err := a.webhook.Listening(); err != nil {
		return err
	}
	return certs.Check(a.certs, a.now())
}

// WebhookAddr is the webhook server's listen address once it listens.
func (a *App) WebhookAddr() string {
	if a.webhook == nil {
		return ""
	}
	return a.webhook.Addr()
}

func (a *App) healthMux() *http.ServeMux {
	mux := http.NewServeMux()
	live := &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}
	ready := &healthz.Handler{Checks: map[string]healthz.Checker{"components": func(*http.Request) error { return a.Ready() }}}
	mux.Handle("/healthz", http.StripPrefix("/healthz", live))
	mux.Handle("/healthz/", http.StripPrefix("/healthz", live))
	mux.Handle("/readyz", http.StripPrefix("/readyz", ready))
	mux.Handle("/readyz/", http.StripPrefix("/readyz", ready))
	return mux
}

// serveHTTP serves a plain-HTTP endpoint until ctx is done.
func (a *App) serveHTTP(ctx context.Context, what, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for %s on %s: %w", what, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	a.log.Info("Serving "+what, "address", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", what, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down %s: %w", what, err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", what, err)
	}
	return nil
}
