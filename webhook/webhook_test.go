package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gomodulesjsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// review is an AdmissionReview held as generic JSON so tests can change any field.
type review map[string]any

func loadReview(t *testing.T, name string) review {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var r review
	require.NoError(t, json.Unmarshal(raw, &r))
	return r
}

func (r review) request() map[string]any { return r["request"].(map[string]any) }
func (r review) object() map[string]any  { return r.request()["object"].(map[string]any) }

// set changes a field of the request's object; path segments are map keys.
func (r review) set(value any, path ...string) review {
	setIn(r.object(), value, path...)
	return r
}

func setIn(m map[string]any, value any, path ...string) {
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	if value == nil {
		delete(m, path[len(path)-1])
		return
	}
	m[path[len(path)-1]] = value
}

func (r review) operation(op string, old map[string]any) review {
	r.request()["operation"] = op
	r.request()["oldObject"] = old
	return r
}

func newWebhooks(cfg defaults.Config) *Webhooks {
	return &Webhooks{Config: cfg, Log: logr.Discard()}
}

// call POSTs body to the path and returns the HTTP status and the decoded review.
func call(t *testing.T, s *Webhooks, path string, body []byte) (int, *admissionv1.AdmissionReview) {
	t.Helper()
	mux := http.NewServeMux()
	s.Register(mux)
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	require.NotNil(t, out.Response)
	assert.Equal(t, "admission.k8s.io/v1", out.APIVersion)
	assert.Equal(t, "AdmissionReview", out.Kind)
	return rec.Code, &out
}

// admit sends a well-formed review and returns its response.
func admit(t *testing.T, s *Webhooks, path string, r review) *admissionv1.AdmissionResponse {
	t.Helper()
	body, err := json.Marshal(r)
	require.NoError(t, err)
	code, out := call(t, s, path, body)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, r.request()["uid"], string(out.Response.UID))
	return out.Response
}

// applyTo applies a response's patch to the review's object, as the API server would.
func applyTo(t *testing.T, r review, resp *admissionv1.AdmissionResponse) map[string]any {
	t.Helper()
	raw, err := json.Marshal(r.object())
	require.NoError(t, err)
	if resp.Patch != nil {
		require.Equal(t, admissionv1.PatchTypeJSONPatch, *resp.PatchType)
		p, err := jsonpatch.DecodePatch(resp.Patch)
		require.NoError(t, err)
		raw, err = p.Apply(raw)
		require.NoError(t, err)
	}
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

// clone copies a JSON value through encoding, the way the API server sees it. The values
// are the tests' own JSON, so an encoding error is a broken test: panic.
func clone(v map[string]any) map[string]any {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}

// without returns a copy of obj with the value at path removed.
func without(obj map[string]any, path ...string) map[string]any {
	c := clone(obj)
	setIn(c, nil, path...)
	return c
}

func policyAt(obj map[string]any, path ...string) any {
	var v any = obj
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

var logDefaultsJSON = map[string]any{"minRetryDuration": "30s", "maxRetryTimes": float64(5), "retryTimeout": "30m"}

func TestMutateLogBackupKeepsEveryOtherField(t *testing.T) {
	s := newWebhooks(defaults.DefaultConfig())
	r := loadReview(t, "create-log-backup.json")
	before := clone(r.object())

	resp := admit(t, s, MutateBackupPath, r)
	require.True(t, resp.Allowed)
	require.NotNil(t, resp.Patch)
	after := applyTo(t, r, resp)

	assert.Equal(t, logDefaultsJSON, policyAt(after, "spec", "backoffRetryPolicy"))
	assert.Equal(t, before, without(after, "spec", "backoffRetryPolicy"),
		"a field outside spec.backoffRetryPolicy changed")
	assert.Equal(t, []string{"spec.backoffRetryPolicy: defaulted all fields from the log-backup policy 30s / 5 / 30m"}, resp.Warnings)

	// Every operation touches only the policy.
	var ops []gomodulesjsonpatch.Operation
	require.NoError(t, json.Unmarshal(resp.Patch, &ops))
	for _, op := range ops {
		assert.True(t, strings.HasPrefix(op.Path, "/spec/backoffRetryPolicy"), op.Path)
	}
}

func TestMutateBackup(t *testing.T) {
	schemaDefaults := map[string]any{"minRetryDuration": "300s", "maxRetryTimes": float64(2), "retryTimeout": "30m"}
	noReplace := defaults.DefaultConfig()
	noReplace.ReplaceSchemaDefaults = false
	tests := []struct {
		name     string
		cfg      defaults.Config
		file     string
		edit     func(review)
		want     any // the policy after the patch
		patched  bool
		warnings int
	}{
		{name: "log backup without policy", file: "create-log-backup.json", want: logDefaultsJSON, patched: true, warnings: 1},
		{
			name: "null policy", file: "create-log-backup.json",
			edit: func(r review) { r.object()["spec"].(map[string]any)["backoffRetryPolicy"] = nil },
			want: logDefaultsJSON, patched: true, warnings: 1,
		},
		{
			name: "schema defaults replaced", file: "create-log-backup.json",
			edit: func(r review) { r.set(schemaDefaults, "spec", "backoffRetryPolicy") },
			want: logDefaultsJSON, patched: true, warnings: 1,
		},
		{
			name: "schema defaults kept by annotation", file: "create-log-backup.json",
			edit: func(r review) {
				r.set(schemaDefaults, "spec", "backoffRetryPolicy")
				r.set("true", "metadata", "annotations", defaults.KeepSchemaDefaultsAnnotation)
			},
			want: schemaDefaults,
		},
		{
			name: "schema defaults kept when replacement is off", cfg: noReplace, file: "create-log-backup.json",
			edit: func(r review) { r.set(schemaDefaults, "spec", "backoffRetryPolicy") },
			want: schemaDefaults,
		},
		{
			name: "partial policy filled, user values kept", file: "create-log-backup.json",
			edit: func(r review) {
				r.set(map[string]any{"maxRetryTimes": 9, "other": "kept"}, "spec", "backoffRetryPolicy")
			},
			want:    map[string]any{"minRetryDuration": "30s", "maxRetryTimes": float64(9), "retryTimeout": "30m", "other": "kept"},
			patched: true, warnings: 1,
		},
		{
			name: "complete user policy untouched", file: "create-log-backup.json",
			edit: func(r review) {
				r.set(map[string]any{"minRetryDuration": "1m", "maxRetryTimes": 3, "retryTimeout": "2h"}, "spec", "backoffRetryPolicy")
			},
			want: map[string]any{"minRetryDuration": "1m", "maxRetryTimes": float64(3), "retryTimeout": "2h"},
		},
		{
			name: "malformed policy left to validation", file: "create-log-backup.json",
			edit: func(r review) { r.set(map[string]any{"minRetryDuration": 30}, "spec", "backoffRetryPolicy") },
			want: map[string]any{"minRetryDuration": float64(30)},
		},
		{name: "snapshot backup untouched", file: "create-snapshot-backup.json", want: schemaDefaults},
		{
			name: "volume-snapshot backup untouched", file: "create-snapshot-backup.json",
			edit: func(r review) { r.set("volume-snapshot", "spec", "backupMode") },
			want: schemaDefaults,
		},
		{
			name: "backup without mode is a snapshot backup", file: "create-snapshot-backup.json",
			edit: func(r review) { r.set(nil, "spec", "backupMode"); r.set(nil, "spec", "backoffRetryPolicy") },
			want: nil,
		},
		{
			name: "update is never mutated", file: "create-log-backup.json",
			edit: func(r review) { r.operation("UPDATE", clone(r.object())) },
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg == (defaults.Config{}) {
				cfg = defaults.DefaultConfig()
			}
			s := newWebhooks(cfg)
			r := loadReview(t, tc.file)
			if tc.edit != nil {
				tc.edit(r)
			}
			before := clone(r.object())
			resp := admit(t, s, MutateBackupPath, r)
			require.True(t, resp.Allowed)
			assert.Equal(t, tc.patched, resp.Patch != nil)
			assert.Len(t, resp.Warnings, tc.warnings, "%v", resp.Warnings)
			after := applyTo(t, r, resp)
			assert.Equal(t, tc.want, policyAt(after, "spec", "backoffRetryPolicy"))
			assert.Equal(t, without(before, "spec", "backoffRetryPolicy"), without(after, "spec", "backoffRetryPolicy"))

			// A second admission pass over the patched object changes nothing.
			r.request()["object"] = after
			again := admit(t, s, MutateBackupPath, r)
			assert.Nil(t, again.Patch, "second pass patched: %s", again.Patch)
		})
	}
}

func TestMutateBackupSchedule(t *testing.T) {
	s := newWebhooks(defaults.DefaultConfig())
	r := loadReview(t, "create-backupschedule.json")
	before := clone(r.object())
	resp := admit(t, s, MutateBackupSchedulePath, r)
	require.True(t, resp.Allowed)
	after := applyTo(t, r, resp)

	assert.Equal(t, logDefaultsJSON, policyAt(after, "spec", "logBackupTemplate", "backoffRetryPolicy"))
	assert.Equal(t, without(before, "spec", "logBackupTemplate", "backoffRetryPolicy"),
		without(after, "spec", "logBackupTemplate", "backoffRetryPolicy"),
		"backupTemplate, compactBackupTemplate or another field changed")
	assert.Equal(t, []string{"spec.logBackupTemplate.backoffRetryPolicy: defaulted all fields from the log-backup policy 30s / 5 / 30m"}, resp.Warnings)

	r.request()["object"] = after
	assert.Nil(t, admit(t, s, MutateBackupSchedulePath, r).Patch, "second pass patched")

	// A log template left with the CRD's snapshot default, or without a mode, becomes a
	// log backup, with a warning; the opt-out annotation keeps it as it is.
	for _, tc := range []struct {
		name  string
		mode  any // nil: absent
		keep  bool
		want  any
		warns []string
	}{
		{name: "the CRD's default", mode: "snapshot", want: "log",
			warns: []string{`spec.logBackupTemplate.backupMode: "snapshot" (the CRD's default) set to "log", since this template makes a log backup`}},
		{name: "absent", mode: nil, want: "log",
			warns: []string{`spec.logBackupTemplate.backupMode: absent set to "log", since this template makes a log backup`}},
		{name: "opted out", mode: "snapshot", keep: true, want: "snapshot"},
		{name: "anything else is the user's, for validation to reject", mode: "volume-snapshot", want: "volume-snapshot"},
		{name: "already log", mode: "log", want: "log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := loadReview(t, "create-backupschedule.json")
			r.set(tc.mode, "spec", "logBackupTemplate", "backupMode")
			if tc.keep {
				r.set(map[string]any{defaults.KeepSchemaDefaultsAnnotation: "true"}, "metadata", "annotations")
			}
			before := clone(r.object())
			resp := admit(t, s, MutateBackupSchedulePath, r)
			require.True(t, resp.Allowed)
			after := applyTo(t, r, resp)
			assert.Equal(t, tc.want, after["spec"].(map[string]any)["logBackupTemplate"].(map[string]any)["backupMode"])
			for _, w := range tc.warns {
				assert.Contains(t, resp.Warnings, w)
				assert.Less(t, len(w), 120, "warnings stay short")
			}
			if len(tc.warns) == 0 {
				for _, w := range resp.Warnings {
					assert.NotContains(t, w, "backupMode")
				}
			}
			assert.Equal(t, without(without(before, "spec", "logBackupTemplate", "backupMode"), "spec", "logBackupTemplate", "backoffRetryPolicy"),
				without(without(after, "spec", "logBackupTemplate", "backupMode"), "spec", "logBackupTemplate", "backoffRetryPolicy"))
			r.request()["object"] = after
			assert.Nil(t, admit(t, s, MutateBackupSchedulePath, r).Patch, "second pass patched")
		})
	}

	// Without a log template nothing happens.
	r = loadReview(t, "create-backupschedule.json")
	setIn(r.object(), nil, "spec", "logBackupTemplate")
	resp = admit(t, s, MutateBackupSchedulePath, r)
	assert.Nil(t, resp.Patch)
}

// cause is a denial cause reduced to what tests may depend on.
type cause struct{ Type, Field string }

func causes(resp *admissionv1.AdmissionResponse) []cause {
	if resp.Result == nil || resp.Result.Details == nil {
		return nil
	}
	var out []cause
	for _, c := range resp.Result.Details.Causes {
		out = append(out, cause{string(c.Type), c.Field})
	}
	return out
}

func TestValidateBackup(t *testing.T) {
	bad := map[string]any{"minRetryDuration": "30", "maxRetryTimes": 5, "retryTimeout": "30m"}
	good := map[string]any{"minRetryDuration": "30s", "maxRetryTimes": 5, "retryTimeout": "30m"}
	withPolicy := func(p any) func(review) {
		return func(r review) { r.set(p, "spec", "backoffRetryPolicy") }
	}
	update := func(oldPolicy, newPolicy any) func(review) {
		return func(r review) {
			old := clone(r.object())
			setIn(old, oldPolicy, "spec", "backoffRetryPolicy")
			r.set(newPolicy, "spec", "backoffRetryPolicy")
			r.set("Running", "status", "phase") // the kind of update TiDB Operator makes
			r.operation("UPDATE", old)
		}
	}
	minField := "spec.backoffRetryPolicy.minRetryDuration"
	tests := []struct {
		name     string
		edit     func(review)
		causes   []cause
		warnings int
	}{
		{name: "valid policy", edit: withPolicy(good)},
		{name: "no policy", edit: withPolicy(nil)},
		{name: "missing unit", edit: withPolicy(bad), causes: []cause{{"FieldValueInvalid", minField}}},
		{
			name: "every field wrong", edit: withPolicy(map[string]any{"minRetryDuration": "1d", "maxRetryTimes": -1, "retryTimeout": "abc"}),
			causes: []cause{
				{"FieldValueInvalid", minField},
				{"FieldValueInvalid", "spec.backoffRetryPolicy.retryTimeout"},
				{"FieldValueInvalid", "spec.backoffRetryPolicy.maxRetryTimes"},
			},
		},
		{name: "wrong type", edit: withPolicy(map[string]any{"maxRetryTimes": "five"}), causes: []cause{{"FieldValueTypeInvalid", "spec.backoffRetryPolicy.maxRetryTimes"}}},
		{name: "snapshot backups are validated too", edit: func(r review) { r.set("snapshot", "spec", "backupMode"); withPolicy(bad)(r) }, causes: []cause{{"FieldValueInvalid", minField}}},
		{name: "schedule warning", edit: withPolicy(map[string]any{"minRetryDuration": "10m", "maxRetryTimes": 5, "retryTimeout": "30m"}), warnings: 1},
		{name: "update keeping a bad policy passes with a warning", edit: update(bad, bad), warnings: 1},
		{name: "update keeping a good policy says nothing", edit: update(good, good)},
		{name: "update changing to a bad policy", edit: update(good, bad), causes: []cause{{"FieldValueInvalid", minField}}},
		{name: "update adding a bad policy", edit: update(nil, bad), causes: []cause{{"FieldValueInvalid", minField}}},
		{name: "update fixing a bad policy", edit: update(bad, good)},
		{name: "delete is allowed", edit: func(r review) { withPolicy(bad)(r); r.operation("DELETE", clone(r.object())) }},
		{name: "connect is allowed", edit: func(r review) { r.operation("CONNECT", nil) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := loadReview(t, "create-log-backup.json")
			tc.edit(r)
			resp := admit(t, newWebhooks(defaults.DefaultConfig()), ValidateBackupPath, r)
			assert.Equal(t, tc.causes == nil, resp.Allowed, "%+v", resp.Result)
			assert.Equal(t, tc.causes, causes(resp))
			assert.Len(t, resp.Warnings, tc.warnings, "%v", resp.Warnings)
			assert.Nil(t, resp.Patch)
			if !resp.Allowed {
				assert.EqualValues(t, http.StatusUnprocessableEntity, resp.Result.Code)
				assert.EqualValues(t, "Invalid", resp.Result.Reason)
				assert.Equal(t, "Backup", resp.Result.Details.Kind)
				assert.Equal(t, "pitr", resp.Result.Details.Name)
			}
			for _, w := range resp.Warnings {
				assert.LessOrEqual(t, len(w), 120, w)
			}
		})
	}
}

func TestValidateBackupMessage(t *testing.T) {
	r := loadReview(t, "create-log-backup.json").set(map[string]any{"minRetryDuration": "30"}, "spec", "backoffRetryPolicy")
	resp := admit(t, newWebhooks(defaults.DefaultConfig()), ValidateBackupPath, r)
	assert.Equal(t, `Backup.pingcap.com "pitr" is invalid: spec.backoffRetryPolicy.minRetryDuration: Invalid value: "30": must be a Go duration such as 30s or 5m (missing unit)`, resp.Result.Message)
}

func TestValidateBackupSchedule(t *testing.T) {
	bad := map[string]any{"minRetryDuration": "-5s"}
	tests := []struct {
		name   string
		edit   func(review)
		causes []cause
	}{
		{name: "valid templates"},
		{
			name:   "bad snapshot template",
			edit:   func(r review) { r.set(bad, "spec", "backupTemplate", "backoffRetryPolicy") },
			causes: []cause{{"FieldValueInvalid", "spec.backupTemplate.backoffRetryPolicy.minRetryDuration"}},
		},
		{
			name: "both templates bad",
			edit: func(r review) {
				r.set(bad, "spec", "backupTemplate", "backoffRetryPolicy")
				r.set(map[string]any{"retryTimeout": "1d"}, "spec", "logBackupTemplate", "backoffRetryPolicy")
			},
			causes: []cause{
				{"FieldValueInvalid", "spec.backupTemplate.backoffRetryPolicy.minRetryDuration"},
				{"FieldValueInvalid", "spec.logBackupTemplate.backoffRetryPolicy.retryTimeout"},
			},
		},
		{
			name: "update keeping a bad template",
			edit: func(r review) {
				r.set(bad, "spec", "backupTemplate", "backoffRetryPolicy")
				r.operation("UPDATE", clone(r.object()))
				r.set(true, "spec", "pause")
			},
		},
		{
			name:   "log template that is not a log backup",
			edit:   func(r review) { r.set("snapshot", "spec", "logBackupTemplate", "backupMode") },
			causes: []cause{{"FieldValueInvalid", "spec.logBackupTemplate.backupMode"}},
		},
		{
			name:   "log template without backupMode",
			edit:   func(r review) { r.set(nil, "spec", "logBackupTemplate", "backupMode") },
			causes: []cause{{"FieldValueRequired", "spec.logBackupTemplate.backupMode"}},
		},
		{
			name:   "snapshot template that is a log backup",
			edit:   func(r review) { r.set("log", "spec", "backupTemplate", "backupMode") },
			causes: []cause{{"FieldValueInvalid", "spec.backupTemplate.backupMode"}},
		},
		{name: "volume-snapshot template", edit: func(r review) { r.set("volume-snapshot", "spec", "backupTemplate", "backupMode") }},
		{
			name: "update keeping a wrong log template mode (status writes stay possible)",
			edit: func(r review) {
				r.set("snapshot", "spec", "logBackupTemplate", "backupMode")
				r.operation("UPDATE", clone(r.object()))
				r.set(true, "spec", "pause")
			},
		},
		{
			name: "update changing the log template mode to snapshot",
			edit: func(r review) {
				r.operation("UPDATE", clone(r.object()))
				r.set("snapshot", "spec", "logBackupTemplate", "backupMode")
			},
			causes: []cause{{"FieldValueInvalid", "spec.logBackupTemplate.backupMode"}},
		},
		{
			name: "update changing the snapshot template to log",
			edit: func(r review) {
				r.operation("UPDATE", clone(r.object()))
				r.set("log", "spec", "backupTemplate", "backupMode")
			},
			causes: []cause{{"FieldValueInvalid", "spec.backupTemplate.backupMode"}},
		},
		{
			name: "update adding a bad log template",
			edit: func(r review) {
				old := clone(r.object())
				setIn(old, nil, "spec", "logBackupTemplate")
				r.set(bad, "spec", "logBackupTemplate", "backoffRetryPolicy")
				r.operation("UPDATE", old)
			},
			causes: []cause{{"FieldValueInvalid", "spec.logBackupTemplate.backoffRetryPolicy.minRetryDuration"}},
		},
		// tidb-operator#6320: maxBackups without maxReservedTime deletes the log backup.
		{
			name: "maxBackups without maxReservedTime, with a log template",
			edit: func(r review) {
				r.set(nil, "spec", "maxReservedTime")
				r.set(int64(2), "spec", "maxBackups")
			},
			causes: []cause{{"FieldValueForbidden", "spec.maxBackups"}},
		},
		{
			name: "maxBackups beside maxReservedTime (which TiDB Operator prefers)",
			edit: func(r review) { r.set(int64(2), "spec", "maxBackups") },
		},
		{
			name: "maxBackups without a log template",
			edit: func(r review) {
				r.set(nil, "spec", "maxReservedTime")
				r.set(nil, "spec", "logBackupTemplate")
				r.set(int64(2), "spec", "maxBackups")
			},
		},
		{
			name: "maxBackups without maxReservedTime, opted out",
			edit: func(r review) {
				r.set(nil, "spec", "maxReservedTime")
				r.set(int64(2), "spec", "maxBackups")
				r.set(map[string]any{defaults.KeepSchemaDefaultsAnnotation: "true"}, "metadata", "annotations")
			},
		},
		{
			name: "update of a schedule that already had the combination",
			edit: func(r review) {
				r.set(nil, "spec", "maxReservedTime")
				r.set(int64(2), "spec", "maxBackups")
				r.operation("UPDATE", clone(r.object()))
				r.set(true, "spec", "pause")
			},
		},
		{
			name: "update that removes maxReservedTime beside maxBackups",
			edit: func(r review) {
				r.set(int64(2), "spec", "maxBackups")
				r.operation("UPDATE", clone(r.object()))
				r.set(nil, "spec", "maxReservedTime")
			},
			causes: []cause{{"FieldValueForbidden", "spec.maxBackups"}},
		},
		{
			name: "update that adds a log template to a maxBackups schedule",
			edit: func(r review) {
				r.set(nil, "spec", "maxReservedTime")
				r.set(int64(2), "spec", "maxBackups")
				old := clone(r.object())
				setIn(old, nil, "spec", "logBackupTemplate")
				r.operation("UPDATE", old)
			},
			causes: []cause{{"FieldValueForbidden", "spec.maxBackups"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := loadReview(t, "create-backupschedule.json")
			if tc.edit != nil {
				tc.edit(r)
			}
			resp := admit(t, newWebhooks(defaults.DefaultConfig()), ValidateBackupSchedulePath, r)
			assert.Equal(t, tc.causes == nil, resp.Allowed)
			assert.Equal(t, tc.causes, causes(resp))
			if !resp.Allowed {
				assert.Equal(t, "BackupSchedule", resp.Result.Details.Kind)
			}
		})
	}
}

func TestMalformedRequests(t *testing.T) {
	valid, err := os.ReadFile("testdata/create-log-backup.json")
	require.NoError(t, err)
	edited := func(edit func(review)) []byte {
		var r review
		require.NoError(t, json.Unmarshal(valid, &r))
		edit(r)
		b, err := json.Marshal(r)
		require.NoError(t, err)
		return b
	}
	tests := []struct {
		name     string
		path     string
		body     []byte
		httpCode int
		respCode int32
	}{
		{name: "not JSON", body: []byte("{not json"), httpCode: 400, respCode: 400},
		{name: "empty body", body: nil, httpCode: 400, respCode: 400},
		{name: "JSON array", body: []byte("[]"), httpCode: 400, respCode: 400},
		{name: "v1beta1 review", body: edited(func(r review) { r["apiVersion"] = "admission.k8s.io/v1beta1" }), httpCode: 400, respCode: 400},
		{name: "not a review", body: edited(func(r review) { r["kind"] = "Backup" }), httpCode: 400, respCode: 400},
		{name: "no request", body: edited(func(r review) { delete(r, "request") }), httpCode: 400, respCode: 400},
		{name: "no uid", body: edited(func(r review) { delete(r.request(), "uid") }), httpCode: 400, respCode: 400},
		{name: "no object", body: edited(func(r review) { delete(r.request(), "object") }), httpCode: 200, respCode: 400},
		{name: "empty object", body: edited(func(r review) { r.request()["object"] = map[string]any{} }), httpCode: 200, respCode: 0},
		{name: "object not an object", body: edited(func(r review) { r.request()["object"] = "pitr" }), httpCode: 200, respCode: 400},
		{name: "wrong field type", body: edited(func(r review) { r.set(5, "spec", "backupMode") }), httpCode: 200, respCode: 400},
		{name: "annotations wrong type", body: edited(func(r review) { r.set("x", "metadata", "annotations") }), httpCode: 200, respCode: 400},
		{
			name: "wrong kind", body: edited(func(r review) {
				r.request()["kind"] = map[string]any{"group": "", "version": "v1", "kind": "Pod"}
			}), httpCode: 200, respCode: 400,
		},
		{name: "schedule sent to the backup path", path: MutateBackupPath, body: mustRead(t, "testdata/create-backupschedule.json"), httpCode: 200, respCode: 400},
		{name: "backup sent to the schedule path", path: ValidateBackupSchedulePath, body: valid, httpCode: 200, respCode: 400},
	}
	for _, tc := range tests {
		for _, path := range []string{MutateBackupPath, ValidateBackupPath} {
			if tc.path != "" {
				path = tc.path
			}
			t.Run(tc.name+path, func(t *testing.T) {
				code, out := call(t, newWebhooks(defaults.DefaultConfig()), path, tc.body)
				assert.Equal(t, tc.httpCode, code)
				if tc.respCode == 0 { // well-formed enough to answer: an empty object is allowed
					assert.True(t, out.Response.Allowed)
					return
				}
				assert.False(t, out.Response.Allowed)
				require.NotNil(t, out.Response.Result)
				assert.Equal(t, tc.respCode, out.Response.Result.Code)
				assert.NotEmpty(t, out.Response.Result.Message)
			})
		}
	}
}

func mustRead(t *testing.T, name string) []byte {
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

func TestTransportLimits(t *testing.T) {
	s := &Webhooks{Config: defaults.DefaultConfig(), Log: logr.Discard(), MaxRequestBytes: 4096}
	mux := http.NewServeMux()
	s.Register(mux)
	send := func(method, contentType string, body []byte, chunked bool) int {
		req := httptest.NewRequest(method, MutateBackupPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if chunked { // no Content-Length: the limit must hold while reading
			req.ContentLength = -1
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code
	}
	big := append([]byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","pad":"`), bytes.Repeat([]byte("x"), 5000)...)
	big = append(big, '"', '}')
	assert.Equal(t, http.StatusRequestEntityTooLarge, send(http.MethodPost, "application/json", big, false))
	assert.Equal(t, http.StatusRequestEntityTooLarge, send(http.MethodPost, "application/json", big, true))
	assert.Equal(t, http.StatusMethodNotAllowed, send(http.MethodGet, "application/json", nil, false))
	assert.Equal(t, http.StatusUnsupportedMediaType, send(http.MethodPost, "text/plain", []byte("{}"), false))
	small := mustRead(t, "testdata/create-snapshot-backup.json")
	assert.Equal(t, http.StatusOK, send(http.MethodPost, "application/json; charset=utf-8", small, false))
}

// The API server decodes JSON case-sensitively; so must the webhook: a "backupmode: log"
// beside the defaulted "backupMode: snapshot" is not a log backup.
func TestFieldNamesAreCaseSensitive(t *testing.T) {
	r := loadReview(t, "create-snapshot-backup.json").set("log", "spec", "backupmode")
	resp := admit(t, newWebhooks(defaults.DefaultConfig()), MutateBackupPath, r)
	assert.Nil(t, resp.Patch)
	r = loadReview(t, "create-log-backup.json")
	obj := r.object()
	obj["Spec"] = obj["spec"]
	delete(obj, "spec")
	resp = admit(t, newWebhooks(defaults.DefaultConfig()), MutateBackupPath, r)
	assert.Nil(t, resp.Patch, "a Spec is not the spec")
}

// A field of the wrong type is reported with its path inside the object, to the
// request's UID.
func TestObjectDecodeErrorNamesTheField(t *testing.T) {
	r := loadReview(t, "create-log-backup.json").set(5, "spec", "backupMode")
	body, err := json.Marshal(r)
	require.NoError(t, err)
	code, out := call(t, newWebhooks(defaults.DefaultConfig()), MutateBackupPath, body)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "5e3c9a1f-7b7e-4c55-9a54-2f4e8a1d6b10", string(out.Response.UID))
	assert.Contains(t, out.Response.Result.Message, "decode object")
	assert.Contains(t, out.Response.Result.Message, "spec.backupMode")
}
