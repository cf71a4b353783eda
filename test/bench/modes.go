package main

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
	"github.com/tidb-backup-guard/tidb-backup-guard/webhook/admissionpolicy"
)

// modes measures create latency of log Backups through one API server under the three
// admission modes at once: none, CEL (the rendered policies) and webhook (our server),
// one namespace each, selected by label. Every round creates one Backup in each, in a
// rotating order, one at a time, so drift on the shared machine falls on all three alike.
// It prints the medians and the ratios to no admission.
func modes() error {
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
	names := []string{"none", "cel", "webhook"}
	ns := map[string]string{}
	for _, name := range names {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "modes-" + name + "-", Labels: map[string]string{"bench-mode": name}}}
		if err := env.Client.Create(ctx, n); err != nil {
			return err
		}
		ns[name] = n.Name
	}
	if err := testenv.RegisterWebhooksSelecting(ctx, env.Client, ours.BaseURL, ours.CABundle,
		&metav1.LabelSelector{MatchLabels: map[string]string{"bench-mode": "webhook"}}); err != nil {
		return err
	}
	for _, o := range admissionpolicy.Render(defaults.DefaultConfig(), admissionpolicy.Options{Prefix: "bench", ParamsNamespace: ns["cel"],
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"bench-mode": "cel"}}}) {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return err
		}
		if err := env.Client.Create(ctx, &unstructured.Unstructured{Object: m}); err != nil {
			return err
		}
	}
	seq := 0
	create := func(name string, opts ...client.CreateOption) (*unstructured.Unstructured, time.Duration, error) {
		seq++
		b, _ := testenv.Object(fmt.Sprintf(backupYAML, seq))
		b.SetNamespace(ns[name])
		start := time.Now()
		err := env.Client.Create(ctx, b, opts...)
		return b, time.Since(start), err
	}
	// Until both kinds of admission default a log Backup.
	if err := waitFor(30*time.Second, func() bool {
		for _, name := range []string{"cel", "webhook"} {
			b, _, err := create(name, client.DryRunAll)
			if err != nil {
				return false
			}
			if _, found := b.Object["spec"].(map[string]any)["backoffRetryPolicy"]; !found {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("admission not in effect: %w", err)
	}
	rounds := envInt("BENCH_MODES_ROUNDS", 300)
	med, err := interleave(names, rounds, func(name string) (time.Duration, error) {
		_, d, err := create(name)
		return d, err
	})
	if err != nil {
		return err
	}
	fmt.Printf("modes rounds=%d none=%s cel=%s webhook=%s cel/none=%.3f webhook/none=%.3f webhook/cel=%.3f\n", rounds,
		med["none"], med["cel"], med["webhook"],
		float64(med["cel"])/float64(med["none"]), float64(med["webhook"])/float64(med["none"]), float64(med["webhook"])/float64(med["cel"]))
	return nil
}
