package webhook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	utiljson "sigs.k8s.io/json"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// decodeBoth decodes body into the views of both kinds, as typed does on its full path.
func decodeBoth(body []byte) (envelope[backupView], envelope[scheduleView], error, error) {
	var b envelope[backupView]
	var s envelope[scheduleView]
	errB := utiljson.UnmarshalCaseSensitivePreserveInts(body, &b)
	errS := utiljson.UnmarshalCaseSensitivePreserveInts(body, &s)
	return b, s, errB, errS
}

// readAnnotations keeps the annotations the webhooks read (objectMeta.keepSchemaDefaults):
// prune drops the others, and views are compared on what decisions see.
func readAnnotations(m *objectMeta) {
	if m.Annotations == nil {
		return
	}
	kept := map[string]string{}
	if v, ok := m.Annotations[defaults.KeepSchemaDefaultsAnnotation]; ok {
		kept[defaults.KeepSchemaDefaultsAnnotation] = v
	}
	m.Annotations = kept
}

func normalize[V any](e *envelope[V], meta func(*V) *objectMeta) {
	if e.Request == nil {
		return
	}
	for _, o := range []*V{e.Request.Object, e.Request.OldObject} {
		if o != nil {
			readAnnotations(meta(o))
		}
	}
}

func backupMeta(v *backupView) *objectMeta     { return &v.Metadata }
func scheduleMeta(v *scheduleView) *objectMeta { return &v.Metadata }

// checkPrune is the property the fast path relies on: prune accepts only what the full
// decoder accepts, and the views decoded from its output are the views decoded from the
// whole body.
func checkPrune(t *testing.T, body []byte) (accepted bool) {
	t.Helper()
	pruned, ok := prune(body, reviewKeep)
	if !ok {
		return false
	}
	if !json.Valid(body) {
		t.Fatalf("prune accepted invalid JSON %q", body)
	}
	wantB, wantS, errB, errS := decodeBoth(body)
	gotB, gotS, gotErrB, gotErrS := decodeBoth(pruned)
	normalize(&wantB, backupMeta)
	normalize(&gotB, backupMeta)
	normalize(&wantS, scheduleMeta)
	normalize(&gotS, scheduleMeta)
	// A view that does not decode from the pruned document falls back to the full
	// decode, so only a view that does must match.
	if gotErrB == nil {
		if errB != nil {
			t.Fatalf("the pruned document decodes, the body does not (%v): %q", errB, body)
		}
		if !reflect.DeepEqual(wantB, gotB) {
			t.Fatalf("Backup views differ:\nfull   %+v\npruned %+v\nbody %q", wantB, gotB, body)
		}
	}
	if gotErrS == nil {
		if errS != nil {
			t.Fatalf("the pruned document decodes, the body does not (%v): %q", errS, body)
		}
		if !reflect.DeepEqual(wantS, gotS) {
			t.Fatalf("BackupSchedule views differ:\nfull   %+v\npruned %+v\nbody %q", wantS, gotS, body)
		}
	}
	return true
}

func TestPruneKeepsWhatTheViewsRead(t *testing.T) {
	names, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for _, n := range names {
		body, err := os.ReadFile(n)
		require.NoError(t, err)
		require.True(t, checkPrune(t, body), "the fast path takes %s", n)
		pruned, _ := prune(body, reviewKeep)
		assert.Less(t, len(pruned), len(body)/2, "%s: %d of %d bytes kept", n, len(pruned), len(body))
		assert.NotContains(t, string(pruned), "managedFields")
		assert.NotContains(t, string(pruned), "last-applied-configuration")
	}
}

func TestPruneDeclinesOrAgrees(t *testing.T) {
	env := func(object string) string {
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE",` +
			`"kind":{"group":"pingcap.com","version":"v1alpha1","kind":"Backup"},"object":` + object + `}}`
	}
	tests := []struct {
		name   string
		body   string
		accept bool
	}{
		{"plain", env(`{"metadata":{"name":"a","annotations":{"x":"y"}},"spec":{"backupMode":"log","s3":{"bucket":"b"},"backoffRetryPolicy":{"maxRetryTimes":3}}}`), true},
		{"duplicate keys: the last wins in both", env(`{"spec":{"backupMode":"snapshot","backupMode":"log"},"spec":{"backoffRetryPolicy":{}}}`), true},
		{"escaped key", env(`{"sp\u0065c":{"backupMode":"log"}}`), false},
		{"escapes in values are fine", env(`{"metadata":{"name":"a\"b\u00e9"},"spec":{"backupMode":"l\u006fg"}}`), true},
		{"spec is not an object", env(`{"spec":"log"}`), true},
		{"numbers of every form", env(`{"spec":{"x":[0,-1,1.5,2e10,-3.25E-2,1e+2],"backoffRetryPolicy":{"maxRetryTimes":1e30}}}`), true},
		{"literals", env(`{"spec":{"a":true,"b":false,"c":null,"backoffRetryPolicy":null}}`), true},
		{"whitespace everywhere", " \n{ \"apiVersion\" :\t\"admission.k8s.io/v1\" , \"request\" : { \"uid\" : \"u\" } } \r\n", true},
		{"invalid UTF-8 is kept as the decoder keeps it", env("{\"metadata\":{\"name\":\"\xff\"},\"spec\":{\"x\":\"\xfe\"}}"), true},
		{"leading zero", env(`{"spec":{"x":01}}`), false},
		{"bare minus", env(`{"spec":{"x":-}}`), false},
		{"trailing dot", env(`{"spec":{"x":1.}}`), false},
		{"empty exponent", env(`{"spec":{"x":1e}}`), false},
		{"bad literal", env(`{"spec":{"x":nul}}`), false},
		{"bad escape", env(`{"spec":{"x":"\q"}}`), false},
		{"short unicode escape", env(`{"spec":{"x":"\u12"}}`), false},
		{"control character in a string", env("{\"spec\":{\"x\":\"a\tb\"}}"), false},
		{"trailing comma", env(`{"spec":{"x":1,}}`), false},
		{"missing colon", env(`{"spec":{"x" 1}}`), false},
		{"unterminated", `{"request":{"uid":"u"`, false},
		{"trailing garbage", `{"request":{}} x`, false},
		{"two values", `{} {}`, false},
		{"empty", ``, false},
		{"not an object", `[1,2]`, true},
		{"annotations other than the opt-out are dropped", env(`{"metadata":{"annotations":{"a":"b","tidb-backup-guard.io/keep-schema-defaults":"true","c":"d"}}}`), true},
		{"an annotation that is not a string is left to the full decoder", env(`{"metadata":{"annotations":{"a":1}}}`), false},
		{"annotations that are not an object", env(`{"metadata":{"annotations":"x"}}`), true},
		{"the opt-out annotation twice", env(`{"metadata":{"annotations":{"tidb-backup-guard.io/keep-schema-defaults":"true","tidb-backup-guard.io/keep-schema-defaults":"false"}}}`), true},
		{"too deep", strings.Repeat("[", maxPruneDepth+1) + strings.Repeat("]", maxPruneDepth+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.accept, checkPrune(t, []byte(tt.body)))
		})
	}
}

// FuzzPrune checks the fast path against the full decoder on arbitrary bytes.
func FuzzPrune(f *testing.F) {
	for _, s := range seedFiles(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"request":{"object":{"spec":{"backupMode":"log"},"spec":null}}}`))
	f.Add([]byte(`{"request":{"uid":"a"},"request":{"name":"b"}}`))
	f.Add([]byte(`{"request":{"object":{"metadata":{"annotations":{"a":1}}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkPrune(t, body)
	})
}
