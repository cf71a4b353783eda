package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tidb-backup-guard/tidb-backup-guard/certs"
	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testcerts"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
	"github.com/tidb-backup-guard/tidb-backup-guard/webhook"
)

const noopPath = "/noop"

func writeCerts(dir string) error {
	ca, err := testcerts.ServingCert(dir, 24*time.Hour, "127.0.0.1")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600)
}

// noop answers an AdmissionReview "allowed" after reading the body and taking out only the
// request's UID, which the API server requires back: the floor any webhook pays for HTTP,
// TLS and reading the body. count, if set, counts the calls.
func noop(count *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if count != nil {
			count.Add(1)
		}
		body, _ := io.ReadAll(r.Body)
		uid := ""
		if _, rest, ok := bytes.Cut(body, []byte(`"uid":"`)); ok { // request.uid comes first
			uid, _, _ = strings.Cut(string(rest), `"`)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":%q,"allowed":true}}`, uid)
	}
}

// server runs the production webhook server (same TLS configuration, same timeouts) with
// one extra path that answers without looking at the request.
func server(addr, certDir string) error {
	src, err := certs.NewFileSource(certDir, time.Hour, nil, logr.Discard())
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	(&webhook.Webhooks{Config: defaults.DefaultConfig(), Log: logr.Discard()}).Register(mux)
	mux.HandleFunc(noopPath, noop(nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return webhook.NewServer(webhook.ServerOptions{Addr: addr, GetCertificate: src.GetCertificate, Handler: mux, Log: logr.Discard()}).Start(ctx)
}

// reviewBody is the fully populated log Backup fixture, as the API server would send it.
func reviewBody() ([]byte, error) {
	return os.ReadFile(filepath.Join(testenv.RepoRoot(), "webhook", "testdata", "create-log-backup.json"))
}

type result struct {
	endpoint               string
	rate                   int
	p50, p90, p99, maximum time.Duration
	success                float64
}

// newClient is the generator's HTTP/1.1 client, shared by every attack so that the
// keep-alive connections warmed up before measuring are the ones measured: a fresh client
// per attack would put a burst of TLS handshakes into the first milliseconds of each window.
func newClient(roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 1024,
			// A non-nil empty map keeps the transport on HTTP/1.1, as the API server's
			// webhook client speaks to a server that does not offer h2.
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		},
	}
}

// attack drives one endpoint open-loop (requests leave on schedule whether or not earlier
// ones returned) over keep-alive HTTP/1.1 TLS connections, as the API server calls.
func attack(client *http.Client, addr, path string, body []byte, rate int, d time.Duration) result {
	atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.Workers(64), vegeta.MaxWorkers(1024))
	tgt := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodPost, URL: "https://" + addr + path, Body: body,
		Header: http.Header{"Content-Type": []string{"application/json"}}})
	var m vegeta.Metrics
	for res := range atk.Attack(tgt, vegeta.Rate{Freq: rate, Per: time.Second}, d, path) {
		m.Add(res)
	}
	m.Close()
	return result{endpoint: path, rate: rate, p50: m.Latencies.P50, p90: m.Latencies.P90, p99: m.Latencies.P99, maximum: m.Latencies.Max, success: m.Success}
}

// measured is one endpoint at one rate over several runs: the run with the median p99,
// and every run's p99, lowest first.
type measured struct {
	median result
	p99s   []time.Duration
}

// measure drives each endpoint at one rate, runs times, interleaving the endpoints (no-op,
// mutate, validate, no-op, ...) so that drift on the shared machine falls on all of them
// alike; a single stall of a few tens of milliseconds moves one run's p99, so the run with
// the median p99 stands for the rate.
func measure(client *http.Client, addr string, endpoints []string, body []byte, rate int, d time.Duration, runs int) map[string]measured {
	all := map[string][]result{}
	for range runs {
		for _, e := range endpoints {
			all[e] = append(all[e], attack(client, addr, e, body, rate, d))
		}
	}
	out := map[string]measured{}
	for e, rs := range all {
		sort.Slice(rs, func(i, j int) bool { return rs[i].p99 < rs[j].p99 })
		m := measured{median: rs[len(rs)/2]}
		for _, r := range rs {
			m.p99s = append(m.p99s, r.p99)
		}
		out[e] = m
	}
	return out
}

func load(addr, certDir string) error {
	caPEM, err := os.ReadFile(filepath.Join(certDir, "ca.crt"))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	body, err := reviewBody()
	if err != nil {
		return err
	}
	// The generator is not under test: fewer collections in it mean fewer of its own pauses
	// counted as server latency.
	debug.SetGCPercent(400)
	client := newClient(roots)
	d := envDuration("BENCH_DURATION", 5*time.Second)
	runs := envInt("BENCH_RUNS", 5)
	endpoints := []string{noopPath, webhook.MutateBackupPath, webhook.ValidateBackupPath}
	// Warm up code paths and open keep-alive connections (the client keeps them between
	// runs, so TLS handshakes stay out of the runs). Not at a high rate: a rate the
	// generator cannot keep up with makes vegeta open hundreds of connections, and the
	// runs after it then crawl.
	for _, e := range endpoints {
		attack(client, addr, e, body, 500, time.Second)
	}

	fmt.Printf("\n### Latency at 500 requests/s (%s each, open loop, %d runs interleaved; the run with the median p99)\n\n", d, runs)
	fmt.Println("| endpoint | p50 | p90 | p99 | max | success | p99 of each run | p50 / no-op | p99 / no-op |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	at500 := measure(client, addr, endpoints, body, 500, d, runs)
	base := at500[noopPath].median
	for _, e := range endpoints {
		r := at500[e].median
		fmt.Printf("| %s | %s | %s | %s | %s | %.2f%% | %s | %.2f | %.2f |\n", e, r.p50, r.p90, r.p99, r.maximum, r.success*100,
			durations(at500[e].p99s), float64(r.p50)/float64(base.p50), float64(r.p99)/float64(base.p99))
	}

	rates := envInts("BENCH_RATES", []int{500, 750, 1000, 1250, 1500, 2000, 3000, 4000, 6000, 8000})
	fmt.Printf("\n### Highest rate holding p99 <= 5ms (%d runs of %s interleaved, median p99; rates tried: %v)\n\n", runs, d, rates)
	fmt.Println("| endpoint | highest rate | p99 there (each run) | p99 at the next rate (each run) |")
	fmt.Println("| --- | --- | --- | --- |")
	best := map[string]int{}
	there, next := map[string]string{}, map[string]string{}
	holding := endpoints
	for _, rate := range rates {
		if len(holding) == 0 {
			break
		}
		ms := measure(client, addr, holding, body, rate, d, runs)
		var still []string
		for _, e := range holding {
			m := ms[e]
			if m.median.p99 > 5*time.Millisecond || m.median.success < 1 {
				next[e] = fmt.Sprintf("%s at %d/s (success %.1f%%)", durations(m.p99s), rate, m.median.success*100)
				continue
			}
			best[e], there[e] = rate, durations(m.p99s)
			still = append(still, e)
		}
		holding = still
	}
	for _, e := range endpoints {
		ratio := ""
		if best[noopPath] > 0 {
			ratio = fmt.Sprintf(" (%.0f%% of the no-op's)", 100*float64(best[e])/float64(best[noopPath]))
		}
		fmt.Printf("| %s | %d/s%s | %s | %s |\n", e, best[e], ratio, orDash(there[e]), orDash(next[e]))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// durations prints latencies rounded to 10 us, lowest first.
func durations(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Round(10*time.Microsecond).String())
	}
	return strings.Join(parts, ", ")
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// envInt is a positive count from the environment, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func envInts(name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err == nil {
			out = append(out, n)
		}
	}
	return out
}
