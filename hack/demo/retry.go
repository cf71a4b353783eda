package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

const retryYAML = `apiVersion: pingcap.com/v1alpha1
kind: Backup
metadata:
  name: pitr-flaky
  namespace: default
spec:
  backupMode: log
  br:
    cluster: basic
  s3:
    provider: aws
    bucket: backups
    prefix: pitr-flaky
  backoffRetryPolicy:
    minRetryDuration: 2s   # short, for the demo; the log default is 30s
    maxRetryTimes: 3
    retryTimeout: 5m
`

// retryStory shows the reconciler: a log-start that fails twice (a BR error, then a pod
// death nobody reports) and then succeeds.
func retryStory(ctx context.Context, s *story, k kubectl, metricsURL string) error {
	env := s.env
	heading("A log backup whose command fails is retried with exponential backoff")
	fmt.Println("BR and the pods are not running here: the demo ends each log-start run as scripted: a")
	fmt.Println("BR error, then a pod that dies without a word to the Backup, then success.")
	op, stop, err := startScripted(ctx, s, retryYAML, testenv.BRError, testenv.PodDeath, testenv.Succeed)
	if err != nil {
		return err
	}
	defer stop()

	seen := -1
	if err := waitRecovered(ctx, env, "pitr-flaky", op, func(b *unstructured.Unstructured) {
		recs, _, _ := unstructured.NestedSlice(b.Object, "status", "backoffRetryStatus")
		if len(recs) != seen {
			seen = len(recs)
			if seen > 0 {
				r := recs[seen-1].(map[string]any)
				fmt.Printf("  record %v: %s\n      detected %v, retry expected %v\n      cause: %s\n",
					r["retryNum"], r["retryReason"], r["detectFailedAt"], r["expectedRetryAt"], r["originalReason"])
			}
		}
	}); err != nil {
		return err
	}
	if s.realOperator {
		fmt.Println("  each run a Job that TiDB Operator itself created, the last two after the reconciler handed log-start back")
	}
	if err := k.show("get", "bk", "pitr-flaky", "-o",
		`custom-columns=RETRY:.status.backoffRetryStatus[*].retryNum,DETECTED:.status.backoffRetryStatus[*].detectFailedAt,EXPECTED:.status.backoffRetryStatus[*].expectedRetryAt,STARTED:.status.backoffRetryStatus[*].realRetryAt`); err != nil {
		return err
	}
	if err := k.showEvents("pitr-flaky"); err != nil {
		return err
	}
	fmt.Printf("$ curl -s %s | grep '^tidb_backup_guard_log_backup'\n", metricsURL)
	resp, err := http.Get(metricsURL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "tidb_backup_guard_log_backup") {
			fmt.Println(line)
		}
	}
	return nil
}

// waitRecovered polls a Backup, calling each with it, until its log-start is Complete and
// no retry episode is open; then it says how many runs that took.
func waitRecovered(ctx context.Context, env *testenv.Env, name string, op *testenv.Cluster, each func(*unstructured.Unstructured)) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		b := testenv.Empty(testenv.BackupGVK)
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, b); err != nil {
			return err
		}
		each(b)
		phase, _, _ := unstructured.NestedString(b.Object, "status", "logSubCommandStatuses", "log-start", "phase")
		if _, open := b.GetAnnotations()[retry.EpisodeAnnotation]; phase == "Complete" && !open {
			fmt.Printf("  log-start is Complete after %d run(s)\n", op.Runs(name))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not recover within 60s (log-start phase %q)", name, phase)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// showEvents lists the Events about a Backup, oldest first.
func (k kubectl) showEvents(name string) error {
	time.Sleep(500 * time.Millisecond) // events are written asynchronously
	return k.show("get", "events", "--field-selector", "involvedObject.name="+name,
		"--sort-by=.metadata.creationTimestamp", "-o", "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message")
}

// startScripted runs a Cluster in namespace default (the pods, the Job controller,
// the garbage collector, and TiDB Operator's backup controller unless the real one runs),
// shows and creates the Backup of manifest, and scripts how its log-start runs end. stop
// ends the Cluster.
func startScripted(ctx context.Context, s *story, manifest string, outcomes ...testenv.Outcome) (*testenv.Cluster, func(), error) {
	obj, err := testenv.Object(manifest)
	if err != nil {
		return nil, nil, err
	}
	op := testenv.NewCluster(s.env.Client, "default")
	op.PlaysTiDBOperator, op.PD = !s.realOperator, s.pd
	op.Script(obj.GetName(), outcomes...)
	opCtx, stop := context.WithCancel(ctx)
	go op.Run(opCtx)
	fmt.Printf("$ cat backup.yaml\n%s", manifest)
	if err := op.Start(ctx, obj); err != nil {
		stop()
		return nil, nil, err
	}
	fmt.Printf("backup.pingcap.com/%s created\n", obj.GetName())
	return op, stop, nil
}
