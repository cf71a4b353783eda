package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/assets"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testcerts"
)

func freePort(t *testing.T) int {
	port, err := assets.FreePort()
	require.NoError(t, err)
	return port
}

// startApp runs the webhook component on loopback with a fresh certificate. No
// kubeconfig exists anywhere the process could find one: the webhook alone needs none.
func startApp(t *testing.T) (*App, *Options, *x509.CertPool) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "absent"))
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	dir := t.TempDir()
	ca, err := testcerts.ServingCert(dir, time.Hour, "127.0.0.1")
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))

	o := NewOptions()
	o.Components = []string{ComponentWebhook}
	o.WebhookHost, o.WebhookPort, o.CertDir = "127.0.0.1", freePort(t), dir
	o.MetricsBindAddress = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o.HealthProbeBindAddress = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a, err := New(o, logr.Discard())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	require.Eventually(t, func() bool { return a.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + o.HealthProbeBindAddress + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	return a, o, pool
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServeHealthReadyMetrics(t *testing.T) {
	a, o, pool := startApp(t)

	code, _ := httpGet(t, "http://"+o.HealthProbeBindAddress+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, _ = httpGet(t, "http://"+o.HealthProbeBindAddress+"/readyz")
	assert.Equal(t, http.StatusOK, code)

	// One admission request over TLS, then the metrics show it.
	review, err := os.ReadFile(filepath.Join("..", "..", "..", "webhook", "testdata", "create-log-backup.json"))
	require.NoError(t, err)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Post("https://"+a.WebhookAddr()+"/mutate-pingcap-com-v1alpha1-backup", "application/json", bytes.NewReader(review))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), `"patchType":"JSONPatch"`)

	code, metrics := httpGet(t, "http://"+o.MetricsBindAddress+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, metrics, `tidb_backup_guard_webhook_requests_total{result="patched",webhook="mutate-backup"} 1`)
	assert.Contains(t, metrics, `tidb_backup_guard_webhook_request_duration_seconds_count{webhook="mutate-backup"} 1`)
	assert.Contains(t, metrics, "go_goroutines", "runtime metrics are exported too")

	// The certificate metrics the README names: the expiry of the certificate served, and
	// its one load.
	pemBytes, err := os.ReadFile(filepath.Join(o.CertDir, "tls.crt"))
	require.NoError(t, err)
	block, _ := pem.Decode(pemBytes)
	require.NotNil(t, block)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^tidb_backup_guard_certificate_expiry_timestamp_seconds (\S+)$`).FindStringSubmatch(metrics)
	require.Len(t, m, 2, "no expiry metric")
	expiry, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	assert.Equal(t, float64(cert.NotAfter.Unix()), expiry)
	assert.Contains(t, metrics, "\ntidb_backup_guard_certificate_reloads_total 1\n")
	assert.Contains(t, metrics, "\ntidb_backup_guard_certificate_reload_errors_total 0\n")
}

func TestReadyOnlyWithAValidCertificate(t *testing.T) {
	a, _, _ := startApp(t)
	require.NoError(t, a.Ready())
	a.now = func() time.Time { return time.Now().Add(2 * time.Hour) } // past NotAfter
	assert.ErrorContains(t, a.Ready(), "expired")
}

func TestTLSSettings(t *testing.T) {
	a, _, pool := startApp(t)
	dial := func(cfg *tls.Config) (*tls.ConnectionState, error) {
		cfg.RootCAs = pool
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", a.WebhookAddr(), cfg)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		st := conn.ConnectionState()
		return &st, nil
	}
	_, err := dial(&tls.Config{MaxVersion: tls.VersionTLS11})
	assert.Error(t, err, "TLS 1.1 must be refused")

	st, err := dial(&tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12})
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS12), st.Version)

	st, err = dial(&tls.Config{NextProtos: []string{"h2", "http/1.1"}})
	require.NoError(t, err)
	assert.Equal(t, "http/1.1", st.NegotiatedProtocol, "HTTP/2 is off by default")
}

func TestMainCommands(t *testing.T) {
	var out, errOut strings.Builder
	assert.Equal(t, 0, Main([]string{"version"}, &out, &errOut))
	assert.Contains(t, out.String(), "tidb-backup-guard ")
	assert.Equal(t, 2, Main(nil, &out, &errOut))
	assert.Contains(t, errOut.String(), "a command is required: audit, completion, explain, render-policies, serve, version")
	errOut.Reset()
	assert.Equal(t, 2, Main([]string{"frobnicate"}, &out, &errOut))
	assert.Contains(t, errOut.String(), `unknown command "frobnicate"`)
	out.Reset()
	assert.Equal(t, 0, Main([]string{"completion", "bash"}, &out, &errOut))
	assert.Contains(t, out.String(), "bash completion V2 for tidb-backup-guard")
	out.Reset()
	assert.Equal(t, 0, MainAs(PluginName, []string{"explain", "--help"}, &out, &errOut))
	assert.Contains(t, out.String(), "kubectl backup-guard explain NAMESPACE/NAME | NAME [flags]")
	for _, flag := range []string{"--non-retryable-errors", "--resume-hand-off", "--kernel-probe", "--log-backup-min-retry-duration"} {
		assert.Contains(t, out.String(), flag, "explain binds serve's decision options")
	}
	errOut.Reset()
	assert.Equal(t, 1, Main([]string{"serve", "--cert-dir", t.TempDir(), "--log-backup-min-retry-duration=30"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "must be a Go duration such as 30s or 5m (missing unit)")
	errOut.Reset()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "absent"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	assert.Equal(t, 1, Main([]string{"serve", "--components=reconciler"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "load kubeconfig")
	errOut.Reset()
	assert.Equal(t, 1, Main([]string{"serve", "--cert-dir", t.TempDir()}, &out, &errOut))
	assert.Contains(t, errOut.String(), "tls.crt", "a missing certificate stops start-up with a clear message")

	// Bad flags are named, for every command, under the name the user called.
	for _, args := range [][]string{{"serve", "--frob"}, {"explain", "--frob", "ns/b"}, {"audit", "--frob"}} {
		errOut.Reset()
		assert.Equal(t, 2, Main(args, &out, &errOut), args)
		assert.Contains(t, errOut.String(), "tidb-backup-guard "+args[0]+": unknown flag: --frob", args)
	}
	errOut.Reset()
	assert.Equal(t, 2, MainAs(PluginName, []string{"audit", "--dry-run"}, &out, &errOut), "--dry-run needs --fix")
	assert.Contains(t, errOut.String(), "kubectl backup-guard audit: --dry-run: Invalid value: true: needs --fix")
	assert.Contains(t, errOut.String(), "Run 'kubectl backup-guard audit --help' for usage.", "the plugin's display name")
	errOut.Reset()
	assert.Equal(t, 1, Main([]string{"audit", "--kubeconfig", filepath.Join(t.TempDir(), "absent")}, &out, &errOut), "a failure, not a usage error")
	assert.Contains(t, errOut.String(), "tidb-backup-guard audit: load kubeconfig")
	errOut.Reset()
	assert.Equal(t, 2, Main([]string{"explain", "a", "b"}, &out, &errOut), "one Backup at a time")
	errOut.Reset()
	assert.Equal(t, 2, Main([]string{"explain", "ns/b", "-o", "yaml"}, &out, &errOut))
	assert.Contains(t, errOut.String(), `--output: Unsupported value: "yaml"`)
	errOut.Reset()
	assert.Equal(t, 2, Main([]string{"audit", "--namespace-policies", "nope"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "must be NAMESPACE/NAME of a ConfigMap")
	errOut.Reset()
	assert.Equal(t, 1, Main([]string{"serve", "--cert-dir", t.TempDir(), "--reconciler-mode", "loud"}, &out, &errOut))
	assert.Contains(t, errOut.String(), `--reconciler-mode: Unsupported value: "loud"`)

	// render-policies: the CEL mode's objects; per-namespace policies are webhook mode's.
	out.Reset()
	assert.Equal(t, 0, Main([]string{"render-policies", "--params-namespace", "ops", "--log-backup-max-retries", "9", "--namespace-selector", "team=a"}, &out, &errOut))
	for _, want := range []string{"kind: MutatingAdmissionPolicy\n", "kind: ValidatingAdmissionPolicyBinding\n", `maxRetryTimes: "9"`, "namespace: ops",
		"namespaceSelector:\n      matchLabels:\n        team: a"} {
		assert.Contains(t, out.String(), want)
	}
	errOut.Reset()
	assert.Equal(t, 2, Main([]string{"render-policies", "--namespace-policies", "ops/p"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "--namespace-policies: Forbidden: per-namespace policies are not available in CEL mode")
	errOut.Reset()
	assert.Equal(t, 2, Main([]string{"render-policies", "--namespace-selector", "a in"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "--namespace-selector")
	errOut.Reset()
	assert.Equal(t, 2, Main([]string{"render-policies", "--log-backup-min-retry-duration", "1d"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "must be a Go duration")
}
