// Command demo walks through tidb-backup-guard against a local control plane: it starts
// kube-apiserver and etcd with stand-ins for TiDB Operator's CRDs, runs the real
// `tidb-backup-guard serve` binary, registers its webhooks, and shows with kubectl what a
// user sees. `make demo` runs it; `make demo KEEP=1` leaves everything up for exploring.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testcerts"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

func main() {
	binary := flag.String("binary", "bin/tidb-backup-guard", "the tidb-backup-guard binary to run")
	keep := flag.Bool("keep", false, "leave the control plane and the server running until Ctrl-C")
	flag.Parse()
	if err := run(*binary, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

var step int

func heading(format string, args ...any) {
	step++
	fmt.Printf("\n\033[1m==> %d. %s\033[0m\n", step, fmt.Sprintf(format, args...))
}

func run(binary string, keep bool) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// client-go logs through the logger of the request's context: the demo's requests (its
	// clients, the scripted cluster) carry one that drops those lines, so a watch cut short
	// when a story ends ("Unexpected error when reading response body ... context
	// canceled") does not read as a failure. The narration is printed, not logged.
	ctx = klog.NewContext(ctx, logr.Discard())

	heading("Start a local control plane: kube-apiserver and etcd, with TiDB Operator's released CRDs")
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("\nStopping the control plane.")
		err = errors.Join(err, env.Stop())
	}()
	fmt.Printf("API server at %s\n", env.Config.Host)

	// An etcd standing in for the TidbCluster's PD, on PD's port: read by the kernel probe
	// and by TiDB Operator's tracker, which dials basic-pd.default:2379.
	pd, err := etcdtest.Start(etcdtest.Options{Host: demoPDHost})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, pd.Close()) }()
	pdCli, err := pd.Client()
	if err != nil {
		return err
	}
	defer func() { _ = pdCli.Close() }()

	tidb, err := startTiDBOperator(ctx, env)
	if err != nil {
		return err
	}
	if tidb != nil {
		defer func() { _ = tidb.Stop() }()
	}
	demo := &story{env: env, pd: pdCli, realOperator: tidb != nil}

	heading("Start `tidb-backup-guard serve` and register its webhooks")
	server, baseURL, metricsURL, ca, err := startServer(ctx, env, binary, pd.Endpoint)
	if err != nil {
		return err
	}
	defer func() {
		_ = server.Process.Signal(syscall.SIGTERM)
		_ = server.Wait()
	}()
	if err := testenv.RegisterWebhooks(ctx, env.Client, baseURL, ca); err != nil {
		return err
	}
	if err := env.WaitForWebhooks(ctx); err != nil {
		return fmt.Errorf("webhooks not reachable through the API server: %w", err)
	}
	fmt.Printf("Webhooks served at %s over TLS and registered as %s and %s.\n", baseURL, testenv.MutatingConfigName, testenv.ValidatingConfigName)

	k := kubectl{env: env, ctx: ctx}
	heading("A log Backup applied without a retry policy gets the log-backup defaults")
	if err := k.apply(testenv.LogBackupYAML, true); err != nil {
		return err
	}
	if err := k.show("get", "bk", "pitr", "-o", "jsonpath={.spec.backoffRetryPolicy}"); err != nil {
		return err
	}

	heading("A log Backup sent the way Go clients send it (backoffRetryPolicy: {}): the API server fills the\n     CRD's snapshot defaults (300s / 2 / 30m) first; the webhook replaces them and says so")
	if err := k.apply(strings.Replace(testenv.LogBackupYAML, "name: pitr", "name: pitr-go-client", 1)+"  backoffRetryPolicy: {}\n", true); err != nil {
		return err
	}
	if err := k.show("get", "bk", "pitr-go-client", "-o", "jsonpath={.spec.backoffRetryPolicy}"); err != nil {
		return err
	}

	heading("A malformed policy is rejected with the field path")
	if err := k.apply(strings.Replace(testenv.LogBackupYAML, "name: pitr", "name: typo", 1)+"  backoffRetryPolicy:\n    minRetryDuration: \"30\"\n", false); err != nil {
		return err
	}

	heading("Snapshot Backups keep TiDB Operator's own policy")
	if err := k.apply(strings.Replace(strings.Replace(testenv.LogBackupYAML, "backupMode: log", "backupMode: snapshot", 1), "name: pitr", "name: nightly", 1)+"  backoffRetryPolicy: {}\n", true); err != nil {
		return err
	}
	if err := k.show("get", "bk", "nightly", "-o", "jsonpath={.spec.backoffRetryPolicy}"); err != nil {
		return err
	}

	if err := retryStory(ctx, demo, k, metricsURL); err != nil {
		return err
	}
	if err := kernelStory(ctx, demo, k, pd.Endpoint); err != nil {
		return err
	}

	heading("Everything comes to rest: no Backup changes any more")
	backups, err := env.Settle(ctx, "default", testenv.SettleHold, 30*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("All %d Backups in namespace default kept their resourceVersion for %s.\n", len(backups), testenv.SettleHold)

	if keep {
		heading("Left running for you (Ctrl-C stops everything)")
		fmt.Printf("  export KUBECONFIG=%s\n  export PATH=%s:$PATH\n  kubectl get backups\n", env.Kubeconfig, env.AssetsDir)
		<-ctx.Done()
	}
	fmt.Println("\nDemo complete.")
	return nil
}

// demoPDHost is where the demo's PD listens (port 2379): a loopback address of its own.
const demoPDHost = "127.0.0.10"

// story is what the retry stories share: the control plane, PD, and whether TiDB
// Operator's real controller-manager runs.
type story struct {
	env          *testenv.Env
	pd           *clientv3.Client
	realOperator bool
}

// startTiDBOperator starts TiDB Operator's real controller-manager beside the demo, with
// a Ready TidbCluster "basic" and basic-pd.default resolving to the demo's PD. Where it
// cannot start (it needs root, for its own /etc/hosts), the demo says so and plays TiDB
// Operator's part itself; it returns nil then.
func startTiDBOperator(ctx context.Context, env *testenv.Env) (*testenv.TiDBOperator, error) {
	heading("Start TiDB Operator's controller-manager (v1.6.6, built from its module) with a Ready TidbCluster \"basic\"")
	if err := testenv.CreateReadyTidbCluster(ctx, env.Client, "default", "basic", nil); err != nil {
		return nil, err
	}
	tidb, err := env.StartTiDBOperator(ctx, "", map[string]string{"basic-pd.default": demoPDHost})
	if err != nil {
		fmt.Printf("TiDB Operator could not start here (%v).\nThe demo plays its part: it creates each Job and re-runs a command handed back as RetryFailed.\n", err)
		return nil, nil
	}
	fmt.Printf("Running (log: %s). It creates the Jobs and re-runs what the reconciler hands back.\n", tidb.LogPath)
	return tidb, nil
}

// startServer runs the binary with a fresh certificate and waits until it is ready. It
// returns the process, the webhook base URL, the metrics URL and the CA.
func startServer(ctx context.Context, env *testenv.Env, binary, pdEndpoint string) (*exec.Cmd, string, string, []byte, error) {
	certDir := filepath.Join(env.Dir, "serving-certs")
	ca, err := testcerts.ServingCert(certDir, 24*time.Hour, "127.0.0.1", "localhost")
	if err != nil {
		return nil, "", "", nil, err
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = testenv.FreePort(); err != nil {
			return nil, "", "", nil, err
		}
	}
	logPath := filepath.Join(env.Dir, "tidb-backup-guard.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", "", nil, err
	}
	args := []string{"serve",
		"--components=webhook,reconciler",
		"--webhook-host=127.0.0.1", "--webhook-port=" + strconv.Itoa(ports[0]),
		"--cert-dir=" + certDir,
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(ports[1]),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(ports[2]),
		// Every Backup here names cluster "basic"; its PD is the demo's etcd.
		"--kernel-probe=pd-etcd", "--kernel-pd-endpoint=" + pdEndpoint,
	}
	fmt.Printf("$ %s %s\n  (logs: %s)\n", binary, strings.Join(args, " "), logPath)
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	if err := cmd.Start(); err != nil {
		return nil, "", "", nil, err
	}
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2])
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(readyz)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = cmd.Process.Kill()
			return nil, "", "", nil, fmt.Errorf("server not ready within 30s; see %s", logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("Ready: %s answers 200.\n", readyz)
	return cmd, fmt.Sprintf("https://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]), ca, nil
}

type kubectl struct {
	env *testenv.Env
	ctx context.Context
}

// apply shows a manifest and what `kubectl apply` prints for it.
func (k kubectl) apply(manifest string, wantSuccess bool) error {
	fmt.Printf("$ cat backup.yaml\n%s$ kubectl apply -f backup.yaml\n", manifest)
	stdout, stderr, err := k.env.Kubectl(k.ctx, manifest, "apply", "-f", "-")
	fmt.Print(stderr, stdout)
	if (err == nil) != wantSuccess {
		return fmt.Errorf("kubectl apply: expected success=%v, got %v", wantSuccess, err)
	}
	return nil
}

func (k kubectl) show(args ...string) error {
	fmt.Printf("$ kubectl %s\n", strings.Join(quoteArgs(args), " "))
	stdout, stderr, err := k.env.Kubectl(k.ctx, "", args...)
	fmt.Print(stderr, stdout, "\n")
	return err
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "{}") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}
