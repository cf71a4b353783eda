package main

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

const registeredYAML = `apiVersion: pingcap.com/v1alpha1
kind: Backup
metadata:
  name: pitr-registered
  namespace: default
spec:
  backupMode: log
  br:
    cluster: basic
  s3:
    provider: aws
    bucket: backups
    prefix: pitr-registered
  backoffRetryPolicy:
    minRetryDuration: 2s
    maxRetryTimes: 3
    retryTimeout: 5m
`

// kernelStory shows the kernel probe: BR registers the log backup task in PD, then its
// pod dies before it can say so. The reconciler finds the task and recovers the Backup
// instead of re-running log-start into a collision.
func kernelStory(ctx context.Context, env *testenv.Env, k kubectl, pd *etcdtest.Etcd) error {
	heading("A log-start whose pod died after BR registered the task is recovered, not re-run")
	fmt.Printf("An etcd at %s stands in for PD. The demo writes the task there as BR does\n", pd.Endpoint)
	fmt.Println("(/tidb/br-stream/info/pitr-registered, a protobuf StreamBackupTaskInfo), then kills the pod.")
	cli, err := pd.Client()
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	const startTS = 449532234876551170
	if err := etcdtest.PutTask(ctx, cli, "pitr-registered", startTS); err != nil {
		return err
	}
	op := testenv.NewFakeOperator(env.Client, "default")
	op.Script("pitr-registered", testenv.PodDeath)
	opCtx, stopOp := context.WithCancel(ctx)
	defer stopOp()
	go op.Run(opCtx)
	obj, err := testenv.Object(registeredYAML)
	if err != nil {
		return err
	}
	if err := op.Start(ctx, obj); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b := testenv.Empty(testenv.BackupGVK)
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "pitr-registered"}, b); err != nil {
			return err
		}
		phase, _, _ := unstructured.NestedString(b.Object, "status", "logSubCommandStatuses", "log-start", "phase")
		if _, open := b.GetAnnotations()[reconciler.EpisodeAnnotation]; phase == "Complete" && !open {
			fmt.Printf("  log-start is Complete after %d run(s); status.commitTs comes from the task's start ts\n", op.Runs("pitr-registered"))
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pitr-registered was not recovered within 60s (log-start phase %q)", phase)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := k.show("get", "bk", "pitr-registered", "-o",
		`custom-columns=COMMITTS:.status.commitTs,PHASE:.status.logSubCommandStatuses.log-start.phase,RECORD:.status.backoffRetryStatus[0].retryReason`); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // events are written asynchronously
	return k.show("get", "events", "--field-selector", "involvedObject.name=pitr-registered",
		"--sort-by=.metadata.creationTimestamp", "-o", "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message")
}
