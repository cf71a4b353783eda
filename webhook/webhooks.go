package webhook

import (
	"net/http"

	"github.com/go-logr/logr"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// The paths the webhook configurations call, named the way kubebuilder names them.
const (
	MutateBackupPath           = "/mutate-pingcap-com-v1alpha1-backup"
	ValidateBackupPath         = "/validate-pingcap-com-v1alpha1-backup"
	MutateBackupSchedulePath   = "/mutate-pingcap-com-v1alpha1-backupschedule"
	ValidateBackupSchedulePath = "/validate-pingcap-com-v1alpha1-backupschedule"
)

// Webhooks holds what the four admission handlers share.
type Webhooks struct {
	// Config is the defaulting configuration (log defaults, schema-default replacement).
	Config defaults.Config
	// Policies, if set, gives the configuration per namespace (namespace overrides of the
	// log defaults) in place of Config.
	Policies defaults.Resolver
	// Log receives one line per malformed request and, at V(1), one per decision.
	Log logr.Logger
	// MaxRequestBytes bounds a request body; 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// Metrics records requests; nil records nothing.
	Metrics *Metrics
}

// config is the defaulting configuration that holds in a namespace.
func (s *Webhooks) config(namespace string) defaults.Config {
	if s.Policies != nil {
		return s.Policies.For(namespace)
	}
	return s.Config
}

// Register adds the four webhook paths to mux.
func (s *Webhooks) Register(mux *http.ServeMux) {
	for path, h := range s.Handlers() {
		mux.Handle(path, h)
	}
}

// Handlers returns the HTTP handler of each webhook path.
func (s *Webhooks) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		MutateBackupPath:           s.handler("mutate-backup", typed(s.mutateBackup)),
		ValidateBackupPath:         s.handler("validate-backup", typed(s.validateBackup)),
		MutateBackupSchedulePath:   s.handler("mutate-backupschedule", typed(s.mutateSchedule)),
		ValidateBackupSchedulePath: s.handler("validate-backupschedule", typed(s.validateSchedule)),
	}
}

func (s *Webhooks) handler(name string, admit admitFunc) http.Handler {
	maxBytes := s.MaxRequestBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRequestBytes
	}
	return &reviewHandler{name: name, admit: admit, maxBytes: maxBytes, log: s.Log, metrics: s.Metrics}
}
