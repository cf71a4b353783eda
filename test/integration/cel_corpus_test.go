package integration

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// Rows of docs/cel-mode.md's table "What CEL cannot do" that the corpus shows.
const (
	rowOneError   = "one error at a time"
	rowEscaping   = "values quoted as written"
	rowOverflow   = "overflowing durations"
	rowNoWarnings = "no warnings"
)

// celDifferences are the corpus cases where the policies answer differently from the
// webhooks, by README row. The test fails on a difference not listed here, and on a listed
// one that went away.
var celDifferences = func() map[string]string {
	d := map[string]string{"everything wrong": rowOneError}
	for _, v := range []string{"\t5s", "1\"s", "1\u00e9"} {
		for _, f := range []string{"min", "min-only", "timeout"} {
			d[f+"="+v] = rowEscaping
		}
	}
	for _, v := range []string{"2562047h47m16.854775808s", "9999999999999h", "99999999999999999999s"} {
		for _, f := range []string{"min", "min-only", "timeout"} {
			d[f+"="+v] = rowOverflow
		}
	}
	return d
}()

// durations is the duration corpus: Go's grammar at its edges, valid and not.
var durations = []string{
	"30s", "5m", "300s", "1h30m", "1.5h", ".5s", "5.s", "300ms", "1us", "1\u00b5s", "1\u03bcs", "1ns", "+5s", "1h0m0s",
	"2562047h", "2562047h47m16.854775807s", "2562047h47m16.854775808s", "9999999999999h", "99999999999999999999s",
	"", " ", "30", "1.5", "-5", "+", "-", ".", "1d", "1h2d", "1hh", "-5s", "0", "-0", "+0", "0s", "0.0s", "abc", "5 s", " 5s",
	"5s ", "1.5.3s", "1e3s", "\uff15s", "s", "5sm", "1h-2m", "1H", "1Ms", "..5s", ".5.5s", "1h1.5.3s", "1h 2m",
	"1\"s", "\t5s", "1\u00e9",
}

// celCorpusBackup is a log Backup of the corpus's shape.
func celCorpusBackup(name string, spec map[string]any) *unstructured.Unstructured {
	u := testenv.Empty(testenv.BackupGVK)
	u.SetName(name)
	base := map[string]any{"backupMode": "log", "br": map[string]any{"cluster": "basic"},
		"s3": map[string]any{"provider": "aws", "bucket": "b", "prefix": "p"}}
	for k, v := range spec {
		base[k] = v
	}
	u.Object["spec"] = base
	return u
}

// celCorpus builds the corpus: every duration in each duration field, maxRetryTimes at its
// bounds, the CRD's defaults, missing fields, the opt-out, other modes, schedules, and
// UPDATEs of objects created before any admission ran.
func celCorpus(t *testing.T) []celCase {
	t.Helper()
	var cases []celCase
	n := 0
	backup := func(name string, spec map[string]any, annotations map[string]string) *unstructured.Unstructured {
		n++
		u := celCorpusBackup(fmt.Sprintf("c%03d", n), spec)
		u.SetLabels(map[string]string{"case": sanitize(name)})
		if annotations != nil {
			u.SetAnnotations(annotations)
		}
		return u
	}
	add := func(name string, u *unstructured.Unstructured) { cases = append(cases, celCase{name: name, obj: u}) }
	pol := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"backoffRetryPolicy": m}
	}
	for _, d := range durations {
		add("min="+d, backup("min", pol("minRetryDuration", d, "maxRetryTimes", int64(3), "retryTimeout", "30m"), nil))
		add("timeout="+d, backup("timeout", pol("minRetryDuration", "30s", "maxRetryTimes", int64(3), "retryTimeout", d), nil))
		add("min-only="+d, backup("min-only", pol("minRetryDuration", d), nil))
	}
	for _, m := range []int64{-1, 0, 1, 5, 33, 34, 40, 62, 63, 64, 1 << 40} {
		add(fmt.Sprintf("max=%d", m), backup("max", pol("minRetryDuration", "30s", "maxRetryTimes", m, "retryTimeout", "30m"), nil))
		add(fmt.Sprintf("max-only=%d", m), backup("max-only", pol("maxRetryTimes", m), nil))
		add(fmt.Sprintf("max=%d,min=1000h", m), backup("max-big-min", pol("minRetryDuration", "1000h", "maxRetryTimes", m), nil))
	}
	for _, d := range []string{"1000h", "2000000h", "1ns", "1s"} {
		add("min-without-max="+d, backup("min-without-max", pol("minRetryDuration", d, "retryTimeout", "1h"), nil))
	}
	// The CRD's defaults and the schema-default trap.
	add("no policy", backup("none", nil, nil))
	add("empty policy (CRD defaults)", backup("empty", pol(), nil))
	add("CRD defaults written out", backup("crd", pol("minRetryDuration", "300s", "maxRetryTimes", int64(2), "retryTimeout", "30m"), nil))
	add("CRD defaults, 5m", backup("crd-5m", pol("minRetryDuration", "5m", "maxRetryTimes", int64(2), "retryTimeout", "30m"), nil))
	add("CRD default min only", backup("crd-min", pol("minRetryDuration", "300s"), nil))
	add("CRD defaults but one", backup("crd-but-one", pol("minRetryDuration", "300s", "maxRetryTimes", int64(3), "retryTimeout", "30m"), nil))
	add("CRD defaults, opted out", backup("crd-keep", pol("minRetryDuration", "300s", "maxRetryTimes", int64(2), "retryTimeout", "30m"),
		map[string]string{defaults.KeepSchemaDefaultsAnnotation: "true"}))
	add("empty policy, opted out", backup("empty-keep", pol(), map[string]string{defaults.KeepSchemaDefaultsAnnotation: "true"}))
	add("opt-out annotation not true", backup("keep-no", pol(), map[string]string{defaults.KeepSchemaDefaultsAnnotation: "yes"}))
	add("log defaults equal", backup("log-defaults", pol("minRetryDuration", "30s", "maxRetryTimes", int64(5), "retryTimeout", "30m"), nil))
	// Other modes: validated, never defaulted.
	add("snapshot, no policy", backup("snap", map[string]any{"backupMode": "snapshot"}, nil))
	add("snapshot, empty policy", backup("snap-empty", map[string]any{"backupMode": "snapshot", "backoffRetryPolicy": map[string]any{}}, nil))
	add("snapshot, bad policy", backup("snap-bad", map[string]any{"backupMode": "snapshot", "backoffRetryPolicy": map[string]any{"minRetryDuration": "1d"}}, nil))
	add("volume-snapshot, bad policy", backup("vs-bad", map[string]any{"backupMode": "volume-snapshot", "backoffRetryPolicy": map[string]any{"retryTimeout": "30"}}, nil))
	add("mode absent", backup("no-mode", map[string]any{"backupMode": nil}, nil))
	// Every field of the webhook fixtures: the MutatingAdmissionPolicy's apply merges only
	// the policy, so the stored objects must match the webhook's field for field.
	for _, policy := range []map[string]any{nil, {}} {
		n++
		u := fixtureBackup(t)
		u.SetName(fmt.Sprintf("c%03d", n))
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "spec", "backoffRetryPolicy")
		if policy != nil {
			_ = unstructured.SetNestedMap(u.Object, policy, "spec", "backoffRetryPolicy")
		}
		add(fmt.Sprintf("fully populated, policy %v", policy), u)
	}
	// Several problems at once.
	add("everything wrong", backup("all-bad", pol("minRetryDuration", "1d", "maxRetryTimes", int64(-2), "retryTimeout", "0s"), nil))

	// Schedules.
	schedule := func(name string, spec map[string]any) *unstructured.Unstructured {
		n++
		u := testenv.Empty(testenv.BackupScheduleGVK)
		u.SetName(fmt.Sprintf("s%03d", n))
		u.SetLabels(map[string]string{"case": sanitize(name)})
		// backupTemplate is required by the CRD.
		base := map[string]any{"schedule": "0 2 * * *", "maxReservedTime": "72h", "backupTemplate": map[string]any{
			"br": map[string]any{"cluster": "basic"}, "s3": map[string]any{"provider": "aws", "bucket": "b", "prefix": "p"}}}
		for k, v := range spec {
			base[k] = v
			if v == nil {
				delete(base, k)
			}
		}
		u.Object["spec"] = base
		return u
	}
	tmpl := func(kv ...any) map[string]any {
		m := map[string]any{"br": map[string]any{"cluster": "basic"}, "s3": map[string]any{"provider": "aws", "bucket": "b", "prefix": "p"}}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	add("schedule: log template, no mode, no policy", schedule("lt", map[string]any{"logBackupTemplate": tmpl()}))
	add("schedule: log template, log mode, empty policy", schedule("lt-empty", map[string]any{"logBackupTemplate": tmpl("backupMode", "log", "backoffRetryPolicy", map[string]any{})}))
	add("schedule: log template, snapshot mode", schedule("lt-snap", map[string]any{"logBackupTemplate": tmpl("backupMode", "snapshot")}))
	add("schedule: log template, volume-snapshot mode", schedule("lt-vs", map[string]any{"logBackupTemplate": tmpl("backupMode", "volume-snapshot")}))
	add("schedule: log template, bad policy", schedule("lt-bad", map[string]any{"logBackupTemplate": tmpl("backupMode", "log", "backoffRetryPolicy", map[string]any{"minRetryDuration": "30"})}))
	add("schedule: snapshot template, bad policy", schedule("bt-bad", map[string]any{"backupTemplate": tmpl("backoffRetryPolicy", map[string]any{"retryTimeout": "1d"})}))
	add("schedule: snapshot template in log mode", schedule("bt-log", map[string]any{"backupTemplate": tmpl("backupMode", "log")}))
	add("schedule: both templates", schedule("both", map[string]any{"backupTemplate": tmpl(), "logBackupTemplate": tmpl("backupMode", "log")}))
	add("schedule: log template opted out", func() *unstructured.Unstructured {
		u := schedule("lt-keep", map[string]any{"logBackupTemplate": tmpl("backoffRetryPolicy", map[string]any{})})
		u.SetAnnotations(map[string]string{defaults.KeepSchemaDefaultsAnnotation: "true"})
		return u
	}())

	// tidb-operator#6320: maxBackups without maxReservedTime deletes the log backup.
	keepsLog := map[string]any{"maxReservedTime": nil, "maxBackups": int64(2), "logBackupTemplate": tmpl("backupMode", "log")}
	add("schedule: maxBackups, no maxReservedTime, log template", schedule("mb-log", keepsLog))
	add("schedule: maxBackups and maxReservedTime, log template", schedule("mb-both", map[string]any{"maxBackups": int64(2),
		"logBackupTemplate": tmpl("backupMode", "log")}))
	add("schedule: maxBackups, no log template", schedule("mb-nolog", map[string]any{"maxReservedTime": nil, "maxBackups": int64(2)}))
	add("schedule: maxBackups 0, no maxReservedTime, log template", schedule("mb-zero", map[string]any{"maxReservedTime": nil,
		"maxBackups": int64(0), "logBackupTemplate": tmpl("backupMode", "log")}))
	add("schedule: maxBackups, no maxReservedTime, log template, opted out", func() *unstructured.Unstructured {
		u := schedule("mb-keep", keepsLog)
		u.SetAnnotations(map[string]string{defaults.KeepSchemaDefaultsAnnotation: "true"})
		return u
	}())

	// UPDATEs of objects created before any admission: unchanged bad policies stay
	// writable; a change to a bad value is refused; a fix is taken.
	old := func(name string, u *unstructured.Unstructured, update func(*unstructured.Unstructured)) {
		cases = append(cases, celCase{name: name, obj: u, update: update})
	}
	setLabel := func(u *unstructured.Unstructured) { u.SetLabels(map[string]string{"touched": "yes"}) }
	setMin := func(v string) func(*unstructured.Unstructured) {
		return func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, v, "spec", "backoffRetryPolicy", "minRetryDuration")
		}
	}
	old("update: old bad policy, label change", backup("old-1", pol("minRetryDuration", "1d"), nil), setLabel)
	old("update: old bad policy, other bad value", backup("old-2", pol("minRetryDuration", "1d"), nil), setMin("2d"))
	old("update: old bad policy, fixed", backup("old-3", pol("minRetryDuration", "1d"), nil), setMin("1m"))
	old("update: good policy made bad", backup("old-4", pol("minRetryDuration", "1m"), nil), setMin("30"))
	old("update: old overflow, label change", backup("old-5", pol("minRetryDuration", "1000h", "maxRetryTimes", int64(40)), nil), setLabel)
	old("update: old schedule, bad modes, label change", schedule("old-6", map[string]any{
		"backupTemplate": tmpl("backupMode", "log"), "logBackupTemplate": tmpl("backupMode", "snapshot")}), setLabel)
	old("update: old schedule, log template mode changed to another bad one", schedule("old-7", map[string]any{
		"logBackupTemplate": tmpl("backupMode", "snapshot")}), func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(u.Object, "volume-snapshot", "spec", "logBackupTemplate", "backupMode")
	})
	old("update: old log backup without policy, label change", backup("old-8", nil, nil), setLabel)
	old("update: old schedule deleting its log backup, label change", schedule("old-9", keepsLog), setLabel)
	old("update: maxReservedTime removed beside maxBackups", schedule("old-10", map[string]any{"maxBackups": int64(2),
		"logBackupTemplate": tmpl("backupMode", "log")}), func(u *unstructured.Unstructured) {
		unstructured.RemoveNestedField(u.Object, "spec", "maxReservedTime")
	})
	old("update: log template added to a maxBackups schedule", schedule("old-11", map[string]any{"maxReservedTime": nil,
		"maxBackups": int64(2)}), func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedMap(u.Object, tmpl("backupMode", "log"), "spec", "logBackupTemplate")
	})
	return cases
}

func sanitize(s string) string {
	r := strings.NewReplacer("=", "-", " ", "-", ",", "-", ":", "", "(", "", ")", "")
	s = r.Replace(s)
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.Trim(s, "-")
}

func runtimeToUnstructured(o runtime.Object) (map[string]any, error) {
	return runtime.DefaultUnstructuredConverter.ToUnstructured(o)
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
