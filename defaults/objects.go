package defaults

import "k8s.io/apimachinery/pkg/runtime/schema"

// The TiDB Operator objects whose policies this package governs: every part of this
// project names them from here.
var (
	BackupGVK         = schema.GroupVersionKind{Group: "pingcap.com", Version: "v1alpha1", Kind: "Backup"}
	BackupScheduleGVK = schema.GroupVersionKind{Group: "pingcap.com", Version: "v1alpha1", Kind: "BackupSchedule"}
)
