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

// readAnnotations keeps the annotations the webhooks read (objectMeta.keepSchemaDefaults):
// the fast decode reads no others, and views are compared on what decisions see.
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
	if e == nil || e.Request == nil {
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

// agrees checks the fast decode of one view type against the full decoder: when it
// accepts, the full decoder must accept too and fill the same view.
func agrees[V any](t *testing.T, body []byte, meta func(*V) *objectMeta) bool {
	t.Helper()
	got, ok := fastDecode[V](body)
	if !ok {
		return false
	}
	if !json.Valid(body) {
		t.Fatalf("the fast decode accepted invalid JSON %q", body)
	}
	var want envelope[V]
	if err := utiljson.UnmarshalCaseSensitivePreserveInts(body, &want); err != nil {
		t.Fatalf("the fast decode accepted what the decoder rejects (%v): %q", err, body)
	}
	normalize(got, meta)
	normalize(&want, meta)
	if !reflect.DeepEqual(&want, got) {
		t.Fatalf("views differ:\nfull %s\nfast %s\nbody %q", dump(&want), dump(got), body)
	}
	return true
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkFast is the property the fast path relies on, for both view types; it reports
// whether the Backup view was accepted.
func checkFast(t *testing.T, body []byte) bool {
	t.Helper()
	agrees(t, body, scheduleMeta)
	return agrees(t, body, backupMeta)
}

func TestFastDecodeReadsTheFixtures(t *testing.T) {
	names, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for _, n := range names {
		body, err := os.ReadFile(n)
		require.NoError(t, err)
		require.True(t, checkFast(t, body), "the fast path takes %s", n)
		require.True(t, agrees(t, body, scheduleMeta), "the fast path takes %s as a schedule", n)
	}
}

func TestFastDecodeDeclinesOrAgrees(t *testing.T) {
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
		{"a member twice is left to the full decoder", env(`{"spec":{"backupMode":"snapshot","backupMode":"log"}}`), false},
		{"an object twice is left to the full decoder", env(`{"spec":{"backupMode":"log"},"spec":{"backoffRetryPolicy":{}}}`), false},
		{"an unread member twice is fine", env(`{"spec":{"s3":1,"s3":2,"backupMode":"log"}}`), true},
		{"escaped key", env(`{"sp\u0065c":{"backupMode":"log"}}`), false},
		{"escapes in values are fine", env(`{"metadata":{"name":"a\"b\u00e9"},"spec":{"backupMode":"l\u006fg"}}`), true},
		{"spec is not an object", env(`{"spec":"log"}`), false},
		{"nulls where objects go", env(`{"metadata":null,"spec":null}`), true},
		{"nulls where strings go", `{"apiVersion":null,"kind":null,"request":{"uid":null,"kind":null,"object":null,"oldObject":null}}`, true},
		{"request null", `{"apiVersion":"admission.k8s.io/v1","request":null}`, true},
		{"a number where a string goes", env(`{"spec":{"backupMode":5}}`), false},
		{"templates", env(`{"spec":{"backupTemplate":{"backupMode":"snapshot","backoffRetryPolicy":{"maxRetryTimes":2}},"logBackupTemplate":null}}`), true},
		{"a template that is not an object", env(`{"spec":{"logBackupTemplate":[]}}`), false},
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
		{"not an object", `[1,2]`, false},
		{"annotations other than the opt-out are dropped", env(`{"metadata":{"annotations":{"a":"b","tidb-backup-guard.io/keep-schema-defaults":"true","c":"d"}}}`), true},
		{"an annotation that is not a string is left to the full decoder", env(`{"metadata":{"annotations":{"a":1}}}`), false},
		{"annotations that are not an object", env(`{"metadata":{"annotations":"x"}}`), false},
		{"many annotations", env(`{"metadata":{"annotations":{"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8","i":"9","j":"10"}}}`), true},
		{"the opt-out annotation twice", env(`{"metadata":{"annotations":{"tidb-backup-guard.io/keep-schema-defaults":"true","tidb-backup-guard.io/keep-schema-defaults":"false"}}}`), true},
		{"too deep", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.accept, checkFast(t, []byte(tt.body)))
		})
	}
}

// FuzzFastDecode checks the fast path against the full decoder on arbitrary bytes.
func FuzzFastDecode(f *testing.F) {
	for _, s := range seedFiles(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"request":{"object":{"spec":{"backupMode":"log"},"spec":null}}}`))
	f.Add([]byte(`{"request":{"uid":"a"},"request":{"name":"b"}}`))
	f.Add([]byte(`{"request":{"object":{"metadata":{"annotations":{"a":1}}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFast(t, body)
	})
}

// TestFlatObject checks the policy's own fast path: the shapes it takes come out as the
// decoder gives them, and it leaves every other shape to the decoder.
func TestFlatObject(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		take bool
	}{
		{"a policy as users write it", `{"minRetryDuration":"30s","maxRetryTimes":5,"retryTimeout":"30m"}`, true},
		{"empty", `{}`, true},
		{"empty with space", "{ \n}", true},
		{"whitespace around everything", " {\t\"a\" :\n\"b\" , \"c\"\r: -7 }", true},
		{"every literal", `{"a":true,"b":false,"c":null,"d":0,"e":-0,"f":9223372036854775807,"g":-9223372036854775808}`, true},
		{"a string of digits stays a string", `{"maxRetryTimes":"5"}`, true},
		{"a fraction is the decoder's", `{"maxRetryTimes":1.5}`, false},
		{"an exponent is the decoder's", `{"maxRetryTimes":1e2}`, false},
		{"an integer beyond int64 is the decoder's", `{"maxRetryTimes":9223372036854775808}`, false},
		{"an escaped string is the decoder's", `{"minRetryDuration":"3\u0030s"}`, false},
		{"non-ASCII is the decoder's", `{"minRetryDuration":"30秒"}`, false},
		{"a key of invalid UTF-8 is the decoder's", "{\"\xe0\":\"\"}", false},
		{"an escaped key is the decoder's", `{"max\u0052etryTimes":5}`, false},
		{"a key twice is the decoder's", `{"maxRetryTimes":5,"maxRetryTimes":6}`, false},
		{"a nested object is the decoder's", `{"a":{"b":1}}`, false},
		{"an array is the decoder's", `{"a":[1]}`, false},
		{"not an object", `"30s"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			p := scanner{in: raw}
			start := p.ws(0)
			end, err := p.skip(start)
			require.NoError(t, err, "the fixture must be valid JSON")
			got, took := flatObject(raw[start:end])
			require.Equal(t, tt.take, took)
			if !took {
				return
			}
			var want any
			require.NoError(t, utiljson.UnmarshalCaseSensitivePreserveInts(raw, &want))
			assert.Equal(t, want, any(got))
		})
	}
}
