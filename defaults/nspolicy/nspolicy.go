package nspolicy

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// ReasonInvalidNamespacePolicy is the Warning Event on the namespace-policies ConfigMap
// when some entry cannot be used (the namespace keeps its last good policy).
const ReasonInvalidNamespacePolicy = "InvalidNamespacePolicy"

// Watcher keeps a defaults.NamespacePolicies in step with its ConfigMap, and reports an
// entry it cannot use (Event, metrics, log) once per change.
//
// A ConfigMap, not namespace annotations: the server then reads one object in its own
// namespace (a Role, not a ClusterRole to read every Namespace), the whole set of
// overrides is reviewed and versioned as one file, and the webhook, which otherwise
// needs no API access, watches a single object.
type Watcher struct {
	namespace, name string
	policies        *defaults.NamespacePolicies
	client          kubernetes.Interface
	log             logr.Logger
	invalid         *prometheus.GaugeVec
	rejected        prometheus.Counter

	mu       sync.Mutex
	synced   cache.InformerSynced
	reported string // the errors last reported, to tell each problem once
}

// New returns a Watcher of the ConfigMap namespace/name feeding policies; its metrics are
// registered with reg.
func New(client kubernetes.Interface, namespace, name string, policies *defaults.NamespacePolicies,
	reg prometheus.Registerer, log logr.Logger) *Watcher {
	w := &Watcher{
		namespace: namespace, name: name, policies: policies, client: client, log: log,
		invalid: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tidb_backup_guard_namespace_policy_invalid",
			Help: "1 for each namespace whose entry in the namespace-policies ConfigMap cannot be used (its last good policy stays in effect).",
		}, []string{"namespace"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tidb_backup_guard_namespace_policy_rejected_total",
			Help: "Versions of the namespace-policies ConfigMap with at least one entry that could not be used.",
		}),
	}
	reg.MustRegister(w.invalid, w.rejected)
	return w
}

// Start watches the ConfigMap until ctx is done (a manager.Runnable).
func (w *Watcher) Start(ctx context.Context) error {
	lw := cache.NewFilteredListWatchFromClient(w.client.CoreV1().RESTClient(), "configmaps", w.namespace,
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.name).String()
		})
	informer := cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 0, cache.Indexers{})
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: w.client.EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(clientgoscheme.Scheme, "tidb-backup-guard")
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.apply(o, recorder) },
		UpdateFunc: func(_, o any) { w.apply(o, recorder) },
		DeleteFunc: func(any) {
			w.policies.Update(nil, nil)
			w.invalid.Reset()
			w.log.Info("Namespace policies ConfigMap deleted: every namespace has the server's defaults", "configMap", w.namespace+"/"+w.name)
		},
	})
	if err != nil {
		return fmt.Errorf("watch namespace policies: %w", err)
	}
	w.mu.Lock()
	w.synced = informer.HasSynced
	w.mu.Unlock()
	informer.Run(ctx.Done())
	return nil
}

// Synced reports whether the ConfigMap was read (or found absent) at least once.
func (w *Watcher) Synced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.synced != nil && w.synced()
}

func (w *Watcher) apply(o any, recorder events.EventRecorder) {
	cm, ok := o.(*corev1.ConfigMap)
	if !ok {
		return
	}
	errs := w.policies.Update(cm.Data, field.NewPath("data"))
	w.invalid.Reset()
	for _, e := range errs {
		// data[<namespace>]...: the key is the namespace.
		if ns, ok := errKey(e.Field); ok {
			w.invalid.WithLabelValues(ns).Set(1)
		}
	}
	log := w.log.WithValues("configMap", w.namespace+"/"+w.name, "resourceVersion", cm.ResourceVersion)
	if len(errs) == 0 {
		w.reported = ""
		log.Info("Namespace policies in effect", "overrides", w.policies.Overrides())
		return
	}
	msg := errs.ToAggregate().Error()
	log.Error(nil, "Namespace policies: entries rejected, those namespaces keep their last good policy", "errors", msg,
		"overrides", w.policies.Overrides())
	if msg == w.reported {
		return
	}
	w.reported = msg
	w.rejected.Inc()
	recorder.Eventf(cm, nil, corev1.EventTypeWarning, ReasonInvalidNamespacePolicy, "Load",
		"entries not applied, their namespaces keep their last good policy: %s", defaults.Truncate(msg, maxNote))
}

// errKey returns the key of a data[<key>] path.
func errKey(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "data[")
	if !ok {
		return "", false
	}
	key, _, ok := strings.Cut(rest, "]")
	return key, ok
}

// maxNote keeps an Event's note within the API's 1 kB limit.
const maxNote = 1000
