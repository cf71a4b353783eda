package webhook

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	utiljson "sigs.k8s.io/json"
)

// decodeBoth decodes a whole review into views of type V with the webhook's decode (JSON
// v2) and with the API server's decoder, the reference: both must accept or both reject,
// and what they accept must be equal. It reports whether the review was accepted.
func agrees[V any](t *testing.T, body []byte) bool {
	t.Helper()
	var want, got envelope[V]
	wantErr := utiljson.UnmarshalCaseSensitivePreserveInts(body, &want)
	err := jsonv2.Unmarshal(body, &got, reviewOptions)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("the decoders disagree on %q:\napimachinery: %v\nJSON v2:      %v", body, wantErr, err)
	}
	if err != nil {
		return false
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("views differ for %q:\napimachinery %s\nJSON v2      %s", body, dump(want), dump(got))
	}
	return true
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkDecode holds both view types to the reference on a review carrying object as
// its object; it reports whether both accepted it.
func checkDecode(t *testing.T, object []byte) bool {
	t.Helper()
	return checkReview(t, env(object))
}

func checkReview(t *testing.T, body []byte) bool {
	t.Helper()
	schedule := agrees[scheduleView](t, body)
	return agrees[backupView](t, body) && schedule
}

func env(object []byte) []byte {
	return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE",` +
		`"kind":{"group":"pingcap.com","version":"v1alpha1","kind":"Backup"},"object":` + string(object) + `}}`)
}

func TestDecodeReadsTheFixtures(t *testing.T) {
	names, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for _, n := range names {
		require.True(t, checkReview(t, mustRead(t, n)), n)
	}
}

func TestDecodeMatchesAPIMachinery(t *testing.T) {
	tests := []struct {
		name   string
		object string
		accept bool
	}{
		{"plain", `{"metadata":{"name":"a","annotations":{"x":"y"}},"spec":{"backupMode":"log","s3":{"bucket":"b"},"backoffRetryPolicy":{"maxRetryTimes":3}}}`, true},
		{"a member twice: the last wins", `{"spec":{"backupMode":"snapshot","backupMode":"log"}}`, true},
		{"an object twice: merged", `{"spec":{"backupMode":"log"},"spec":{"backoffRetryPolicy":{}}}`, true},
		{"a policy twice: the last wins", `{"spec":{"backoffRetryPolicy":{"maxRetryTimes":1,"retryTimeout":"1m"},"backoffRetryPolicy":{"maxRetryTimes":2}}}`, true},
		{"escaped key", `{"sp\u0065c":{"backupMode":"log"}}`, true},
		{"case differs: not the field", `{"Spec":{"backupMode":"log"},"spec":{"backupmode":"log"}}`, true},
		{"escapes in values", `{"metadata":{"name":"a\"b\u00e9"},"spec":{"backupMode":"l\u006fg"}}`, true},
		{"spec is not an object", `{"spec":"log"}`, false},
		{"nulls where objects go", `{"metadata":null,"spec":null}`, true},
		{"a number where a string goes", `{"spec":{"backupMode":5}}`, false},
		{"templates", `{"spec":{"backupTemplate":{"backupMode":"snapshot","backoffRetryPolicy":{"maxRetryTimes":2}},"logBackupTemplate":null}}`, true},
		{"a template that is not an object", `{"spec":{"logBackupTemplate":[]}}`, false},
		{"numbers of every form", `{"spec":{"x":[0,-1,1.5,2e10,-3.25E-2,1e+2],"backoffRetryPolicy":{"maxRetryTimes":1e30,"a":-0,"b":9223372036854775807,"c":9223372036854775808,"d":1.5,"e":{"f":[1,2.5]}}}}`, true},
		{"a number beyond float64", `{"spec":{"backoffRetryPolicy":{"maxRetryTimes":1e999}}}`, false},
		{"literals", `{"spec":{"a":true,"b":false,"c":null,"backoffRetryPolicy":null}}`, true},
		{"invalid UTF-8 is replaced", "{\"metadata\":{\"name\":\"\xff\"},\"spec\":{\"backupMode\":\"\xfelog\",\"backoffRetryPolicy\":{\"\xe0\":\"\xe1\"}}}", true},
		{"annotations", `{"metadata":{"annotations":{"a":"b","tidb-backup-guard.io/keep-schema-defaults":"true"}}}`, true},
		{"an annotation that is not a string", `{"metadata":{"annotations":{"a":1}}}`, false},
		{"annotations that are not an object", `{"metadata":{"annotations":"x"}}`, false},
		{"the opt-out annotation twice", `{"metadata":{"annotations":{"tidb-backup-guard.io/keep-schema-defaults":"true","tidb-backup-guard.io/keep-schema-defaults":"false"}}}`, true},
		{"an unread member of any shape", `{"status":{"a":[{"b":[[]]}],"c":"\ud83d\ude00"},"spec":{"backupMode":"log"}}`, true},
		{"deeply nested unread value", `{"status":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, true},
		{"not JSON", `{"spec":{"x":01}}`, false},
		{"trailing comma", `{"spec":{"x":1,}}`, false},
		{"control character in a string", "{\"spec\":{\"x\":\"a\tb\"}}", false},
		{"bad escape", `{"spec":{"x":"\q"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.accept, checkDecode(t, []byte(tt.object)))
		})
	}
}

// The envelope's members decode as the reference decodes them too.
func TestDecodeEnvelopeMatchesAPIMachinery(t *testing.T) {
	for _, body := range []string{
		`{"apiVersion":null,"kind":null,"request":{"uid":null,"kind":null,"object":null,"oldObject":null}}`,
		`{"apiVersion":"admission.k8s.io/v1","request":null}`,
		`{"request":{"uid":"a"},"request":{"name":"b"}}`,
		" \n{ \"apiVersion\" :\t\"admission.k8s.io/v1\" , \"request\" : { \"uid\" : \"u\" } } \r\n",
		`{"request":{"uid":"u"`,
		`{"request":{}} x`,
		`{} {}`,
		``,
		`[1,2]`,
		`{"request":{"uid":5}}`,
		`{"request":{"userInfo":{"extra":{"a":["b"]}},"options":{"x":1},"dryRun":true}}`,
	} {
		checkReview(t, []byte(body))
	}
}

// FuzzDecode holds the review decode to apimachinery's decoder on arbitrary bytes, as a
// whole review and as the object of a valid one.
func FuzzDecode(f *testing.F) {
	for _, s := range seedFiles(f) {
		var r struct {
			Request struct {
				Object json.RawMessage `json:"object"`
			} `json:"request"`
		}
		f.Add(s)
		if json.Unmarshal(s, &r) == nil && len(r.Request.Object) > 0 {
			f.Add([]byte(r.Request.Object))
		}
	}
	f.Add([]byte(`{"spec":{"backupMode":"log"},"spec":null}`))
	f.Add([]byte(`{"metadata":{"annotations":{"a":1}}}`))
	f.Add([]byte(`{"spec":{"backoffRetryPolicy":{"maxRetryTimes":1e30,"x":[1,{"y":2}]}}}`))
	f.Add([]byte(`{"request":{"uid":"a"},"request":{"name":"b"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkReview(t, body)
		checkDecode(t, body)
	})
}
