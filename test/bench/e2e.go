package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/certs"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
	"github.com/tidb-backup-guard/tidb-backup-guard/webhook"
)

// e2e measures create latency of log Backups through the real API server at a fixed rate:
// without webhooks, with the same webhook configurations calling no-op webhooks, and with
// ours.
func e2e() error {
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer env.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops the no-op webhook server
	rate, d := 50, envDuration("BENCH_E2E_DURATION", 10*time.Second)

	run := func(label string) ([]time.Duration, error) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
		if err := env.Client.Create(ctx, ns); err != nil {
			return nil, err
		}
		var mu sync.Mutex
		var lat []time.Duration
		var firstErr error
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; i < int(d.Seconds())*rate; i++ {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, _ := testenv.Object(fmt.Sprintf(backupYAML, i))
				b.SetNamespace(ns.Name)
				start := time.Now()
				err := env.Client.Create(ctx, b)
				mu.Lock()
				defer mu.Unlock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, time.Since(start))
			}()
		}
		wg.Wait()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return lat, firstErr
	}
	pct := func(l []time.Duration, p float64) time.Duration { return l[int(float64(len(l)-1)*p)] }

	if _, err := run("warm-up"); err != nil {
		return err
	}
	s, err := env.StartServer(ctx, logr.Discard(), nil)
	if err != nil {
		return err
	}
	defer s.Stop()
	noop, err := startNoopWebhooks(ctx, env.Dir)
	if err != nil {
		return err
	}
	// Rounds alternate without and with the webhooks, so that drift on the shared machine
	// (compactions, other load) falls on both; each round's p99 difference is reported and
	// the median is the result.
	rounds := envInt("BENCH_E2E_ROUNDS", 3)
	fmt.Printf("\n### Create latency of log Backups through kube-apiserver (%d/s for %s each, %d rounds alternating)\n\n", rate, d, rounds)
	fmt.Println("| round | webhooks | creates | p50 | p90 | p99 | p99 difference to none |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	var diffs, noopDiffs, overNoop []time.Duration
	row := func(round int, name string, l []time.Duration, diff string) {
		fmt.Printf("| %d | %s | %d | %s | %s | %s | %s |\n", round, name, len(l), pct(l, .5), pct(l, .9), pct(l, .99), diff)
	}
	for round := 1; round <= rounds; round++ {
		if err := testenv.UnregisterWebhooks(ctx, env.Client); err != nil {
			return err
		}
		if err := env.WaitForNoWebhooks(ctx); err != nil {
			return fmt.Errorf("webhooks still called after unregistering: %w", err)
		}
		without, err := run("without")
		if err != nil {
			return err
		}
		// The same configurations, calling webhooks that answer "allowed" without reading
		// the object: what any webhook costs the API server, whatever it does.
		if err := testenv.RegisterWebhooks(ctx, env.Client, noop.baseURL, noop.ca); err != nil {
			return err
		}
		if err := noop.waitCalled(ctx, env); err != nil {
			return err
		}
		withNoop, err := run("no-op")
		if err != nil {
			return err
		}
		if err := testenv.RegisterWebhooks(ctx, env.Client, s.BaseURL, s.CABundle); err != nil {
			return err
		}
		if err := env.WaitForWebhooks(ctx); err != nil {
			return err
		}
		with, err := run("with")
		if err != nil {
			return err
		}
		diff, noopDiff := pct(with, .99)-pct(without, .99), pct(withNoop, .99)-pct(without, .99)
		diffs, noopDiffs, overNoop = append(diffs, diff), append(noopDiffs, noopDiff), append(overNoop, diff-noopDiff)
		row(round, "not registered", without, "")
		row(round, "no-op mutating + validating", withNoop, noopDiff.String())
		row(round, "mutating + validating", with, diff.String())
	}
	median := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	fmt.Printf("\nMedian p99 difference over %d rounds: no-op webhooks %s; ours %s (goal: <= 5ms); ours over the no-op ones %s.\n",
		rounds, median(noopDiffs), median(diffs), median(overNoop))
	return nil
}

const backupYAML = `
apiVersion: pingcap.com/v1alpha1
kind: Backup
metadata:
  name: bench-%d
spec:
  backupMode: log
  br: {cluster: basic}
  s3: {provider: aws, bucket: backups, prefix: bench}
  resources: {limits: {memory: 2Gi}}
  env: [{name: A, value: b}]
  tolerations: [{key: dedicated, operator: Equal, value: backup, effect: NoSchedule}]
`

// noopWebhooks serves every webhook path with the load test's no-op handler, counting the
// calls per kind.
type noopWebhooks struct {
	baseURL              string
	ca                   []byte
	mutating, validating atomic.Int64
}

func startNoopWebhooks(ctx context.Context, dir string) (*noopWebhooks, error) {
	certDir := filepath.Join(dir, "noop-certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	if err := writeCerts(certDir); err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(certDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	src, err := certs.NewFileSource(certDir, time.Hour, nil, logr.Discard())
	if err != nil {
		return nil, err
	}
	port, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	n := &noopWebhooks{baseURL: fmt.Sprintf("https://127.0.0.1:%d", port), ca: ca}
	mux := http.NewServeMux()
	for path, count := range map[string]*atomic.Int64{
		webhook.MutateBackupPath: &n.mutating, webhook.MutateBackupSchedulePath: &n.mutating,
		webhook.ValidateBackupPath: &n.validating, webhook.ValidateBackupSchedulePath: &n.validating,
	} {
		mux.HandleFunc(path, noop(count))
	}
	srv := webhook.NewServer(webhook.ServerOptions{Addr: fmt.Sprintf("127.0.0.1:%d", port), GetCertificate: src.GetCertificate, Handler: mux, Log: logr.Discard()})
	go func() { _ = srv.Start(ctx) }()
	return n, nil
}

// waitCalled returns once a dry-run create reaches both no-op webhooks.
func (n *noopWebhooks) waitCalled(ctx context.Context, env *testenv.Env) error {
	return waitFor(30*time.Second, func() bool {
		m, v := n.mutating.Load(), n.validating.Load()
		b, _ := testenv.Object(fmt.Sprintf(backupYAML, 0))
		b.SetNamespace("default")
		if env.Client.Create(ctx, b, client.DryRunAll) != nil {
			return false
		}
		return n.mutating.Load() > m && n.validating.Load() > v
	})
}
