// Package retrytest builds raw Backup objects for the tests of the retry rules and of the
// packages built on them (the controller's cache, explain). It writes the objects as TiDB
// Operator and this project spell them, independently of package retry, which it does not
// import, so that the rules' own tests can use it too.
package retrytest

import (
	"encoding/json"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// T0 is the time the tests' stories start.
var T0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// At is T0+d.
func At(d time.Duration) *time.Time { t := T0.Add(d); return &t }

// Edit changes a raw Backup.
type Edit func(*unstructured.Unstructured)

// Obj builds a raw log Backup named pitr in ns, status.phase Running, then applies edits.
func Obj(edits ...Edit) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "pingcap.com/v1alpha1",
		"kind":       "Backup",
		"metadata":   map[string]any{"name": "pitr", "namespace": "ns", "uid": "backup-uid"},
		"spec":       map[string]any{"backupMode": "log", "br": map[string]any{"cluster": "basic"}},
		"status":     map[string]any{"phase": "Running"},
	}}
	for _, e := range edits {
		e(u)
	}
	return u
}

// Set sets the field at a dotted path ("status.phase"); nil removes it.
func Set(path string, v any) Edit {
	return func(u *unstructured.Unstructured) {
		if v == nil {
			unstructured.RemoveNestedField(u.Object, strings.Split(path, ".")...)
			return
		}
		if err := unstructured.SetNestedField(u.Object, v, strings.Split(path, ".")...); err != nil {
			panic(err)
		}
	}
}

// Entry sets a command entry's phase, with a Failed condition (BR's error at T0) when
// the phase is Failed.
func Entry(cmd, phase string) Edit {
	return func(u *unstructured.Unstructured) {
		e := map[string]any{"command": cmd, "phase": phase}
		if phase == "Failed" {
			e["conditions"] = []any{map[string]any{"type": "Failed", "status": "True", "reason": "BRFailed",
				"message": "rpc error: store 1 unavailable", "lastTransitionTime": T0.Format(time.RFC3339)}}
		}
		Set("status.logSubCommandStatuses."+cmd, e)(u)
	}
}

// Episode opens a retry episode of cmd (the annotation tidb-backup-guard.io/retry-episode).
func Episode(cmd string, gaveUp bool) Edit {
	return func(u *unstructured.Unstructured) {
		b, _ := json.Marshal(map[string]any{"command": cmd, "gaveUp": gaveUp})
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann["tidb-backup-guard.io/retry-episode"] = string(b)
		u.SetAnnotations(ann)
	}
}

// Rec is a record of status.backoffRetryStatus, in TiDB Operator's format: retry n
// detected at T0+detect, due after due, started then if started.
func Rec(n int64, detect, due time.Duration, started bool) map[string]any {
	r := map[string]any{"retryNum": n, "detectFailedAt": T0.Add(detect).Format(time.RFC3339),
		"expectedRetryAt": T0.Add(detect + due).Format(time.RFC3339), "retryReason": "", "originalReason": "BRFailed: boom"}
	if started {
		r["realRetryAt"] = r["expectedRetryAt"]
	}
	return r
}

// Records sets status.backoffRetryStatus.
func Records(recs ...map[string]any) Edit {
	raw := make([]any, len(recs))
	for i, r := range recs {
		raw[i] = r
	}
	return Set("status.backoffRetryStatus", raw)
}

// Rich is a failed log Backup with fields of every kind this project does not own.
func Rich() *unstructured.Unstructured {
	return Obj(Entry("log-start", "Failed"),
		Set("metadata.labels", map[string]any{"team": "dba"}),
		Set("metadata.annotations", map[string]any{"example.com/keep": "me"}),
		Set("spec.s3", map[string]any{"bucket": "b", "prefix": "p", "options": []any{"--x"}}),
		Set("spec.resources", map[string]any{"limits": map[string]any{"memory": "4Gi"}}),
		Set("status.progresses", []any{map[string]any{"step": "Data", "progress": 12.5}}),
		Set("status.logSubCommandStatuses.log-start.timeStarted", "2026-11-28T09:00:00Z"),
		Set("status.someFutureField", map[string]any{"a": []any{int64(1), "two"}}),
		Set("status.conditions", []any{map[string]any{"type": "Scheduled", "status": "True"}}),
	)
}
