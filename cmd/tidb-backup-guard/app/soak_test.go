package app

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
)

// soakCase is one kind of request in the mix and what its answer must be.
type soakCase struct {
	path    string
	body    []byte
	code    int
	allowed bool
	patched bool
}

func soakCases(t *testing.T) []soakCase {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "webhook", "testdata", name))
		require.NoError(t, err)
		return b
	}
	logBackup, snapshot := read("create-log-backup.json"), read("create-snapshot-backup.json")
	bad := bytes.Replace(snapshot, []byte(`"minRetryDuration": "300s"`), []byte(`"minRetryDuration": "30"`), 1)
	require.NotEqual(t, snapshot, bad)
	return []soakCase{
		{path: "/mutate-pingcap-com-v1alpha1-backup", body: logBackup, code: 200, allowed: true, patched: true},
		{path: "/validate-pingcap-com-v1alpha1-backup", body: logBackup, code: 200, allowed: true},
		{path: "/mutate-pingcap-com-v1alpha1-backup", body: snapshot, code: 200, allowed: true},
		{path: "/validate-pingcap-com-v1alpha1-backup", body: bad, code: 200, allowed: false},
		{path: "/validate-pingcap-com-v1alpha1-backupschedule", body: logBackup, code: 200, allowed: false}, // wrong kind
		{path: "/mutate-pingcap-com-v1alpha1-backup", body: []byte("{not json"), code: 400, allowed: false},
	}
}

// heapAndGoroutines settles the runtime and reads what the soak compares.
func heapAndGoroutines() (uint64, int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, runtime.NumGoroutine()
}

// The soak: 20,000 admission requests, valid and invalid mixed, from 4 concurrent
// clients over TLS. Every answer is the expected one, none is a server error, and
// neither goroutines nor the heap grow between the first and the last 5,000.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the 20,000-request soak is long: make test runs it, go test -short does not")
	}
	a, _, pool := startApp(t)
	cases := soakCases(t)
	const clients, total, quarter = 4, 20000, 5000
	var sent, failures atomic.Int64
	var firstFailure atomic.Value
	var afterFirst, atEnd [2]uint64

	fail := func(msg string) {
		failures.Add(1)
		firstFailure.CompareAndSwap(nil, msg)
	}
	run := func(n int) {
		var wg sync.WaitGroup
		per := n / clients
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 1}
				defer tr.CloseIdleConnections()
				hc := &http.Client{Transport: tr}
				for i := range per {
					tc := cases[(c+i)%len(cases)]
					resp, err := hc.Post("https://"+a.WebhookAddr()+tc.path, "application/json", bytes.NewReader(tc.body))
					sent.Add(1)
					if err != nil {
						fail(err.Error())
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					var review admissionv1.AdmissionReview
					switch {
					case resp.StatusCode != tc.code:
						fail(fmt.Sprintf("%s: status %d, want %d", tc.path, resp.StatusCode, tc.code))
					case json.Unmarshal(body, &review) != nil || review.Response == nil:
						fail(fmt.Sprintf("%s: not an AdmissionReview: %.100s", tc.path, body))
					case review.Response.Allowed != tc.allowed || (review.Response.Patch != nil) != tc.patched:
						fail(fmt.Sprintf("%s: allowed=%v patched=%v", tc.path, review.Response.Allowed, review.Response.Patch != nil))
					}
				}
			}()
		}
		wg.Wait()
	}

	run(quarter)
	heap, g := heapAndGoroutines()
	afterFirst = [2]uint64{heap, uint64(g)}
	run(total - 2*quarter)
	run(quarter)
	heap, g = heapAndGoroutines()
	atEnd = [2]uint64{heap, uint64(g)}

	require.Equal(t, int64(total), sent.Load())
	assert.Zero(t, failures.Load(), "first failure: %v", firstFailure.Load())
	t.Logf("heap after the first %d: %d KiB, at the end: %d KiB; goroutines %d then %d",
		quarter, afterFirst[0]>>10, atEnd[0]>>10, afterFirst[1], atEnd[1])
	assert.LessOrEqual(t, atEnd[1], afterFirst[1], "goroutines grew")
	// A leak of even 100 bytes a request would add about 1.5 MiB over 15,000 requests.
	assert.Less(t, int64(atEnd[0])-int64(afterFirst[0]), int64(1<<20), "heap grew by more than 1 MiB")

	// The server counted every request.
	code, metrics := httpGet(t, "http://"+a.opts.MetricsBindAddress+"/metrics")
	require.Equal(t, http.StatusOK, code)
	var counted int
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "tidb_backup_guard_webhook_requests_total{") {
			var v int
			_, _ = fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v)
			counted += v
		}
	}
	assert.Equal(t, total, counted)
}
