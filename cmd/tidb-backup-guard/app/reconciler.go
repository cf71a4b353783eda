package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/grpclog"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
)

// newReconcilerManager builds the controller-runtime manager that runs the reconciler.
// Its own metrics and health servers are off: the App serves both for every component.
func newReconcilerManager(o *Options, h *hooks, cfg defaults.Config, policies defaults.Resolver, reg prometheus.Registerer, log logr.Logger) (manager.Manager, error) {
	restConfig, err := h.restConfigFor(o)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        log.WithName("reconciler"),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         reconciler.CacheOptions(o.WatchNamespaces),
		// Backups are read as unstructured objects (this project does not own their
		// schema); serve those reads from the cache too.
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
	})
	if err != nil {
		return nil, fmt.Errorf("create reconciler manager: %w", err)
	}
	r := &reconciler.Reconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Recorder:     mgr.GetEventRecorder("tidb-backup-guard"),
		Clock:        clock.RealClock{},
		Config:       cfg,
		Policies:     policies,
		Shadow:       o.Mode == ReconcilerModeShadow,
		NonRetryable: o.NonRetryableErrors,
		Metrics:      reconciler.NewMetrics(reg),
		// Running log backups: looked at again every WatchInterval (their task in PD,
		// their checkpoint lag).
		WatchInterval: o.WatchInterval,
		LagWarning:    o.CheckpointLagWarning,
	}
	if r.NoResumeHandOff, err = noResumeHandOff(restConfig, o.ResumeHandOff, log); err != nil {
		return nil, err
	}
	if o.WriteGuardLimit > 0 {
		r.Guard = &reconciler.WriteGuard{Limit: o.WriteGuardLimit, Window: o.WriteGuardWindow, Cooldown: o.WriteGuardCooldown}
	}
	if o.KernelProbe == KernelProbePDEtcd {
		if err := addKernelProbe(mgr, r, o, log); err != nil {
			return nil, err
		}
	}
	if err := r.SetupWithManager(mgr, controller.Options{
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
		SkipNameValidation:      ptr.To(h.severalInProcess),
	}); err != nil {
		return nil, fmt.Errorf("set up reconciler: %w", err)
	}
	// BackupSchedules whose maxBackups clean-up deletes their log backup: an Event and a
	// gauge, no writes.
	schedules := &reconciler.ScheduleWatcher{Client: mgr.GetClient(), Recorder: r.Recorder, Metrics: r.Metrics}
	if err := schedules.SetupWithManager(mgr, controller.Options{SkipNameValidation: ptr.To(h.severalInProcess)}); err != nil {
		return nil, fmt.Errorf("set up schedule watcher: %w", err)
	}
	return mgr, nil
}

// grpc (under the etcd client of the kernel probe) logs every failed connection attempt
// to stderr through a global logger; the probe reports its own failures, in this server's
// log format. Set in init, as grpc requires: the logger may not change while any grpc
// client runs.
func init() {
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
}

// addKernelProbe gives the reconciler a kernel.Prober, a runnable of the manager.
func addKernelProbe(mgr manager.Manager, r *reconciler.Reconciler, o *Options, log logr.Logger) error {
	r.KernelEvents = make(chan event.TypedGenericEvent[*unstructured.Unstructured], 1024)
	p, err := kernel.New(kernel.Config{
		EndpointTemplate:  o.KernelPDEndpoint,
		TLSSecretTemplate: o.KernelTLSSecret,
		// Secrets are read when needed, not watched: a cache would hold every Secret.
		Secrets:  mgr.GetAPIReader(),
		Timeout:  o.KernelProbeTimeout,
		CacheTTL: o.KernelProbeCacheTTL,
		Notify:   r.NotifyKernel,
		Observe:  r.Metrics.ObserveProbe,
		Log:      log.WithName("kernel"),
	})
	if err != nil {
		return fmt.Errorf("kernel probe: %w", err)
	}
	r.Kernel = p
	return mgr.Add(p)
}

// noResumeHandOff resolves --resume-hand-off: with auto, TiDB Operator's installed Backup
// CRD decides (reconciler.CanRunResume).
func noResumeHandOff(cfg *rest.Config, mode string, log logr.Logger) (bool, error) {
	switch mode {
	case ResumeHandOffOn:
		return false, nil
	case ResumeHandOffOff:
		return true, nil
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return false, fmt.Errorf("client for TiDB Operator's Backup CRD: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return !reconciler.CanRunResume(ctx, c, log), nil
}

// restConfigFor is the API access of the components that need one: the hook's (tests),
// else an explicit kubeconfig, else $KUBECONFIG or ~/.kube/config, else the in-cluster
// service account.
func (h *hooks) restConfigFor(o *Options) (*rest.Config, error) {
	if h.restConfig != nil {
		return h.restConfig, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	return cfg, nil
}
