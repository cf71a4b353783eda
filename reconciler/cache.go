package reconciler

import (
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
)

// The cache holds only what decisions read. It can: every write and deletion happens
// after a fresh read from the API server (see Reconcile), never on a cached object. With
// thousands of Backups, full objects (managedFields, pod templates, storage settings)
// cost tens of kilobytes each.

// StripBackup is a cache transform for Backups: it keeps the fields viewBackup reads.
func StripBackup(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	out := &unstructured.Unstructured{Object: map[string]any{}}
	out.SetAPIVersion(u.GetAPIVersion())
	out.SetKind(u.GetKind())
	out.SetNamespace(u.GetNamespace())
	out.SetName(u.GetName())
	out.SetUID(u.GetUID())
	out.SetResourceVersion(u.GetResourceVersion())
	out.SetGeneration(u.GetGeneration())
	out.SetDeletionTimestamp(u.GetDeletionTimestamp())
	kept := map[string]string{}
	for _, a := range []string{retry.EpisodeAnnotation, defaults.KeepSchemaDefaultsAnnotation} {
		if v, ok := u.GetAnnotations()[a]; ok {
			kept[a] = v
		}
	}
	if len(kept) > 0 {
		out.SetAnnotations(kept)
	}
	keep := func(path ...string) {
		if v, found, _ := unstructured.NestedFieldNoCopy(u.Object, path...); found {
			_ = unstructured.SetNestedField(out.Object, v, path...)
		}
	}
	for _, f := range []string{"backupMode", "logSubcommand", "logStop", "logTruncateUntil", "backoffRetryPolicy"} {
		keep("spec", f)
	}
	keep("spec", "br", "cluster") // not the rest of spec.br: BR's options and settings
	keep("spec", "br", "clusterNamespace")
	for _, f := range []string{"phase", "commitTs", "logSuccessTruncateUntil", "backoffRetryStatus", "logCheckpointTs", "timeSynced", "conditions"} {
		keep("status", f)
	}
	// Of the command entries, decisions read the phase and the conditions (one per type,
	// a handful); they are read in place, and only what is kept is copied.
	if entries, ok := nestedMapNoCopy(u.Object, "status", "logSubCommandStatuses"); ok {
		stripped := make(map[string]any, len(entries))
		for cmd, v := range entries {
			e, ok := v.(map[string]any)
			if !ok {
				continue
			}
			entry := map[string]any{}
			if phase, ok := e["phase"]; ok {
				entry["phase"] = phase
			}
			if conds, ok := e["conditions"]; ok {
				entry["conditions"] = conds
			}
			stripped[cmd] = entry
		}
		_ = unstructured.SetNestedField(out.Object, stripped, "status", "logSubCommandStatuses")
	}
	return out, nil
}

// StripJob is a cache transform for Jobs: identity, ownership and conditions only (the
// pod template is most of a Job).
func StripJob(obj any) (any, error) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return obj, nil
	}
	out := &batchv1.Job{}
	out.Name, out.Namespace, out.UID = j.Name, j.Namespace, j.UID
	out.ResourceVersion, out.DeletionTimestamp = j.ResourceVersion, j.DeletionTimestamp
	out.OwnerReferences = j.OwnerReferences // labels served the cache's selector; nothing reads them
	out.Status.Conditions = j.Status.Conditions
	return out, nil
}

// nestedMapNoCopy returns the map at path without copying it.
func nestedMapNoCopy(obj map[string]any, path ...string) (map[string]any, bool) {
	v, found, _ := unstructured.NestedFieldNoCopy(obj, path...)
	m, ok := v.(map[string]any)
	return m, found && ok
}

// CacheOptions is the cache the reconciler needs: Backups and TiDB Operator's backup
// Jobs (JobLabels), of the named namespaces (none: every namespace), each stripped to what
// decisions read. Cached objects are only ever read for decisions (writes follow a fresh
// read: Reconcile refuses to write a cached copy), which is what makes stripping safe.
func CacheOptions(namespaces []string) cache.Options {
	backup := &unstructured.Unstructured{}
	backup.SetGroupVersionKind(defaults.BackupGVK)
	o := cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			// Only TiDB Operator's backup Jobs, not every Job in the cluster.
			&batchv1.Job{}: {Label: labels.SelectorFromSet(JobLabels), Transform: StripJob},
			backup:         {Transform: StripBackup},
		},
	}
	if len(namespaces) > 0 {
		o.DefaultNamespaces = make(map[string]cache.Config, len(namespaces))
		for _, n := range namespaces {
			o.DefaultNamespaces[n] = cache.Config{}
		}
	}
	return o
}
