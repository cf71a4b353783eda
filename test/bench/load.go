package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
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

// noopResponse is a fixed allowed AdmissionReview: the floor any webhook pays for HTTP,
// TLS and reading the body.
var noopResponse = []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}`)

// server runs the production webhook server (same TLS configuration, same timeouts) with
// one extra path that answers without looking at the request.
func server(addr, certDir string) error {
	src, err := certs.NewFileSource(certDir, time.Hour, nil, logr.Discard())
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	(&webhook.Webhooks{Config: defaults.DefaultConfig(), Log: logr.Discard()}).Register(mux)
	mux.HandleFunc(noopPath, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		for {
			if _, err := r.Body.Read(buf); err != nil {
				break
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(noopResponse)
	})
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

// attack drives one endpoint open-loop (requests leave on schedule whether or not earlier
// ones returned) over keep-alive HTTP/1.1 TLS connections, as the API server calls.
func attack(addr, path string, body []byte, roots *x509.CertPool, rate int, d time.Duration) result {
	atk := vegeta.NewAttacker(
		vegeta.TLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}),
		vegeta.KeepAlive(true), vegeta.HTTP2(false), vegeta.Timeout(5*time.Second),
		vegeta.Workers(64), vegeta.MaxWorkers(1024))
	tgt := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodPost, URL: "https://" + addr + path, Body: body,
		Header: http.Header{"Content-Type": []string{"application/json"}}})
	var m vegeta.Metrics
	for res := range atk.Attack(tgt, vegeta.Rate{Freq: rate, Per: time.Second}, d, path) {
		m.Add(res)
	}
	m.Close()
	return result{endpoint: path, rate: rate, p50: m.Latencies.P50, p90: m.Latencies.P90, p99: m.Latencies.P99, maximum: m.Latencies.Max, success: m.Success}
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
	d := envDuration("BENCH_DURATION", 5*time.Second)
	endpoints := []string{noopPath, webhook.MutateBackupPath, webhook.ValidateBackupPath}
	// Warm up connections and code paths.
	for _, e := range endpoints {
		attack(addr, e, body, roots, 200, time.Second)
	}

	fmt.Printf("\n### Latency at 500 requests/s (%s each, open loop)\n\n", d)
	fmt.Println("| endpoint | p50 | p90 | p99 | max | success | p50 / no-op | p99 / no-op |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- |")
	var base result
	for _, e := range endpoints {
		r := attack(addr, e, body, roots, 500, d)
		if e == noopPath {
			base = r
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %.2f%% | %.2f | %.2f |\n", e, r.p50, r.p90, r.p99, r.maximum, r.success*100,
			float64(r.p50)/float64(base.p50), float64(r.p99)/float64(base.p99))
	}

	rates := envInts("BENCH_RATES", []int{1000, 2000, 3000, 4000, 6000, 8000})
	fmt.Printf("\n### Highest rate holding p99 <= 5ms (rates tried: %v)\n\n", rates)
	fmt.Println("| endpoint | highest rate | p99 there | p99 at the next rate |")
	fmt.Println("| --- | --- | --- | --- |")
	var noopMax int
	for _, e := range endpoints {
		best, bestP99, next := 0, time.Duration(0), "-"
		for _, rate := range rates {
			r := attack(addr, e, body, roots, rate, d)
			if r.p99 > 5*time.Millisecond || r.success < 1 {
				next = fmt.Sprintf("%s at %d/s (success %.1f%%)", r.p99, rate, r.success*100)
				break
			}
			best, bestP99 = rate, r.p99
		}
		if e == noopPath {
			noopMax = best
		}
		ratio := ""
		if noopMax > 0 {
			ratio = fmt.Sprintf(" (%.0f%% of the no-op's)", 100*float64(best)/float64(noopMax))
		}
		fmt.Printf("| %s | %d/s%s | %s | %s |\n", e, best, ratio, bestP99, next)
	}
	return nil
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
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
