package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// fuzzMux serves all four webhooks.
var fuzzMux = func() *http.ServeMux {
	mux := http.NewServeMux()
	(&Webhooks{Config: defaults.DefaultConfig(), Log: logr.Discard()}).Register(mux)
	return mux
}()

var paths = []string{MutateBackupPath, ValidateBackupPath, MutateBackupSchedulePath, ValidateBackupSchedulePath}

// post sends body to path and returns the HTTP status and the decoded review, failing
// the fuzz input when the answer is not a well-formed AdmissionReview.
func post(t *testing.T, path string, body []byte) (int, *admissionv1.AdmissionResponse) {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	fuzzMux.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: answer is not JSON (%d): %q", path, rec.Code, rec.Body.String())
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("%s: answer is not an AdmissionReview v1: %s", path, rec.Body.String())
	}
	if rec.Code >= 500 {
		t.Fatalf("%s: server error %d: %s", path, rec.Code, rec.Body.String())
	}
	r := out.Response
	if !r.Allowed && (r.Result == nil || r.Result.Message == "") {
		t.Fatalf("%s: a denial without a reason: %s", path, rec.Body.String())
	}
	if r.Patch != nil && (r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch) {
		t.Fatalf("%s: a patch without patchType JSONPatch", path)
	}
	return rec.Code, r
}

func seedFiles(f *testing.F) [][]byte {
	var seeds [][]byte
	names, _ := filepath.Glob("testdata/*.json")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzAdmissionReview sends arbitrary bytes to every webhook: the answer is always a
// well-formed AdmissionReview (or an HTTP error carrying one), never a panic.
func FuzzAdmissionReview(f *testing.F) {
	for _, s := range seedFiles(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":null}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, p := range paths {
			post(t, p, body)
		}
	})
}

// FuzzBackupObject wraps an arbitrary object in a valid CREATE review and checks the
// mutating webhook's promises: a patch that applies cleanly, changes nothing outside the
// retry policy, yields no patch on a second pass, and leaves an object that validates.
func FuzzBackupObject(f *testing.F) {
	for _, s := range seedFiles(f) {
		var r struct {
			Request struct {
				Object json.RawMessage `json:"object"`
			} `json:"request"`
		}
		if json.Unmarshal(s, &r) == nil && len(r.Request.Object) > 0 {
			f.Add([]byte(r.Request.Object), false)
			f.Add([]byte(r.Request.Object), true)
		}
	}
	f.Add([]byte(`{"spec":{"backupMode":"log","backoffRetryPolicy":{"minRetryDuration":"300s","maxRetryTimes":2,"retryTimeout":"30m"}}}`), false)
	f.Add([]byte(`{"spec":{"backupMode":"log","backoffRetryPolicy":{"maxRetryTimes":1e30}}}`), false)
	f.Add([]byte(`{"spec":{"logBackupTemplate":{"backoffRetryPolicy":null},"backupTemplate":{}}}`), true)
	f.Fuzz(func(t *testing.T, object []byte, schedule bool) {
		var asMap map[string]any
		if json.Unmarshal(object, &asMap) != nil || asMap == nil {
			return // the API server only sends objects
		}
		kind, mutate, validate, policyPath := "Backup", MutateBackupPath, ValidateBackupPath, []string{"spec", "backoffRetryPolicy"}
		if schedule {
			kind, mutate, validate, policyPath = "BackupSchedule", MutateBackupSchedulePath, ValidateBackupSchedulePath, []string{"spec", "logBackupTemplate", "backoffRetryPolicy"}
		}
		review := func(obj []byte) []byte {
			b, err := json.Marshal(map[string]any{
				"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
				"request": map[string]any{
					"uid": "fuzz", "operation": "CREATE", "name": "fuzz", "namespace": "ns",
					"kind":   map[string]any{"group": "pingcap.com", "version": "v1alpha1", "kind": kind},
					"object": json.RawMessage(obj),
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		_, resp := post(t, mutate, review(object))
		if resp.Patch == nil {
			return
		}
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("undecodable patch %s: %v", resp.Patch, err)
		}
		patched, err := p.Apply(object)
		if err != nil {
			t.Fatalf("patch %s does not apply to %s: %v", resp.Patch, object, err)
		}
		var before, after map[string]any
		if err := json.Unmarshal(patched, &after); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(object, &before)
		dropAt(before, policyPath)
		dropAt(after, policyPath)
		if schedule {
			// The log template's mode may change only from the CRD's default (or absent) to log.
			modePath := []string{"spec", "logBackupTemplate", "backupMode"}
			was, had := valueAt(before, modePath)
			now, _ := valueAt(after, modePath)
			if was != now && !((!had || was == "" || was == "snapshot") && now == "log") {
				t.Fatalf("the patch %s changed the log template's backupMode from %v to %v", resp.Patch, was, now)
			}
			dropAt(before, modePath)
			dropAt(after, modePath)
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("the patch %s changed more than %s", resp.Patch, strings.Join(policyPath, "."))
		}
		if _, again := post(t, mutate, review(patched)); again.Patch != nil {
			t.Fatalf("second pass patched again: %s", again.Patch)
		}
		if _, v := post(t, validate, review(patched)); !v.Allowed && causesOn(v, strings.Join(policyPath, ".")) {
			t.Fatalf("the defaulted policy does not validate: %s", v.Result.Message)
		}
	})
}

// dropAt removes the value at path (if the path exists as objects).
func dropAt(m map[string]any, path []string) {
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
	delete(m, path[len(path)-1])
}

// valueAt returns the value at path, and whether it is there.
func valueAt(m map[string]any, path []string) (any, bool) {
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return nil, false
		}
		m = next
	}
	v, ok := m[path[len(path)-1]]
	return v, ok
}

// causesOn reports a denial cause under the given field path.
func causesOn(r *admissionv1.AdmissionResponse, prefix string) bool {
	if r.Result == nil || r.Result.Details == nil {
		return false
	}
	for _, c := range r.Result.Details.Causes {
		if strings.HasPrefix(c.Field, prefix) {
			return true
		}
	}
	return false
}
