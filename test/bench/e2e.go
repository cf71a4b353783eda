package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// e2e measures create latency of log Backups through the real API server, with both
// webhooks registered and without, at a fixed rate.
func e2e() error {
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer env.Stop()
	ctx := context.Background()
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
	// Rounds alternate without and with the webhooks, so that drift on the shared machine
	// (compactions, other load) falls on both; each round's p99 difference is reported and
	// the median is the result.
	rounds := envInts("BENCH_E2E_ROUNDS", []int{3})[0]
	fmt.Printf("\n### Create latency of log Backups through kube-apiserver (%d/s for %s each, %d rounds alternating)\n\n", rate, d, rounds)
	fmt.Println("| round | webhooks | creates | p50 | p90 | p99 | p99 difference |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	var diffs []time.Duration
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
		diff := pct(with, .99) - pct(without, .99)
		diffs = append(diffs, diff)
		fmt.Printf("| %d | not registered | %d | %s | %s | %s | |\n", round, len(without), pct(without, .5), pct(without, .9), pct(without, .99))
		fmt.Printf("| %d | mutating + validating | %d | %s | %s | %s | %s |\n", round, len(with), pct(with, .5), pct(with, .9), pct(with, .99), diff)
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i] < diffs[j] })
	fmt.Printf("\nMedian p99 difference over %d rounds: %s (goal: <= 5ms)\n", rounds, diffs[len(diffs)/2])
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
