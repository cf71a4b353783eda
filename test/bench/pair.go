package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// pair measures what our webhook pair costs a create through the real API server, against
// a floor pair (the same two configurations calling webhooks with fixed answers) and no
// webhooks at all. All three run in one API server at once, one namespace each (the
// configurations select their namespace by label), and every round creates one log Backup
// in each, in a rotating order, one at a time: drift on the shared machine falls on all
// three alike. It prints the medians and two ratios: ours/floor latency, and ours/floor
// cost (latency beyond the no-webhook median). To compare two builds, run each build's
// `bench pair` alternately and take the medians of the ratios (docs/benchmarks.md).
func pair() error {
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer env.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ours, err := env.StartServer(ctx, logr.Discard(), nil)
	if err != nil {
		return err
	}
	defer ours.Stop()
	if err := testenv.UnregisterWebhooks(ctx, env.Client); err != nil {
		return err
	}
	floor, err := startNoopWebhooks(ctx, env.Dir)
	if err != nil {
		return err
	}
	names := []string{"none", "floor", "ours"}
	ns := map[string]string{}
	for _, name := range names {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "pair-" + name + "-", Labels: map[string]string{"bench-pair": name}}}
		if err := env.Client.Create(ctx, n); err != nil {
			return err
		}
		ns[name] = n.Name
	}
	for name, target := range map[string]struct {
		url string
		ca  []byte
	}{"floor": {floor.baseURL, floor.ca}, "ours": {ours.BaseURL, ours.CABundle}} {
		m, v := testenv.WebhookConfigs(target.url, target.ca)
		sel := &metav1.LabelSelector{MatchLabels: map[string]string{"bench-pair": name}}
		m.Name, v.Name = "pair-"+name+"-mutating", "pair-"+name+"-validating"
		for i := range m.Webhooks {
			m.Webhooks[i].NamespaceSelector = sel
		}
		for i := range v.Webhooks {
			v.Webhooks[i].NamespaceSelector = sel
		}
		if err := env.Client.Create(ctx, m); err != nil {
			return err
		}
		if err := env.Client.Create(ctx, v); err != nil {
			return err
		}
	}
	seq := 0
	create := func(name string) (time.Duration, error) {
		seq++
		b, _ := testenv.Object(fmt.Sprintf(backupYAML, seq))
		b.SetNamespace(ns[name])
		start := time.Now()
		err := env.Client.Create(ctx, b)
		return time.Since(start), err
	}
	// Until both pairs are called (the configurations take effect within a second or
	// so): a create in ours must come back defaulted, one in floor must be counted.
	if err := waitFor(30*time.Second, func() bool {
		m := floor.mutating.Load()
		if _, err := create("floor"); err != nil || floor.mutating.Load() == m {
			return false
		}
		b, _ := testenv.Object(fmt.Sprintf(backupYAML, 0))
		b.SetNamespace(ns["ours"])
		if env.Client.Create(ctx, b, client.DryRunAll) != nil {
			return false
		}
		_, found := b.Object["spec"].(map[string]any)["backoffRetryPolicy"]
		return found
	}); err != nil {
		return fmt.Errorf("webhook pairs not called: %w", err)
	}
	rounds := envInt("BENCH_PAIR_ROUNDS", 300)
	med, err := interleave(names, rounds, func(name string) (time.Duration, error) { return create(name) })
	if err != nil {
		return err
	}
	fmt.Printf("pair rounds=%d none=%s floor=%s ours=%s latency_ratio=%.3f cost_ratio=%.3f\n", rounds,
		med["none"], med["floor"], med["ours"],
		float64(med["ours"])/float64(med["floor"]),
		float64(med["ours"]-med["none"])/float64(med["floor"]-med["none"]))
	return nil
}

// interleave creates one object per name per round, one at a time, rotating the order
// each round so that drift on a shared machine falls on every name alike; after 30 rounds
// of warm-up it times rounds more, and returns each name's median latency.
func interleave(names []string, rounds int, create func(name string) (time.Duration, error)) (map[string]time.Duration, error) {
	lat := map[string][]time.Duration{}
	for round := -30; round < rounds; round++ {
		for k := range names {
			name := names[(k+round+30)%len(names)]
			d, err := create(name)
			if err != nil {
				return nil, fmt.Errorf("create in %s: %w", name, err)
			}
			if round >= 0 {
				lat[name] = append(lat[name], d)
			}
		}
	}
	med := map[string]time.Duration{}
	for _, name := range names {
		l := lat[name]
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		med[name] = l[len(l)/2]
	}
	return med, nil
}
