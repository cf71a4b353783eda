package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// registeredYAML is the flaky Backup of the retry story under another name.
var registeredYAML = strings.ReplaceAll(retryYAML, "pitr-flaky", "pitr-registered")

// kernelStory shows the kernel probe: BR registers the log backup task in PD, then its
// pod dies before it can say so. The reconciler finds the task and recovers the Backup
// instead of re-running log-start into a collision.
func kernelStory(ctx context.Context, s *story, k kubectl, pdEndpoint string) error {
	env := s.env
	heading("A log-start whose pod died after BR registered the task is recovered, not re-run")
	fmt.Printf("An etcd at %s stands in for PD. The demo writes the task there as BR does\n", pdEndpoint)
	fmt.Println("(/tidb/br-stream/info/pitr-registered, a protobuf StreamBackupTaskInfo), then kills the pod.")
	// The task starts now, by the demo's clock, so that the lag it shows is seconds.
	startTS := kernel.TSO(time.Now())
	if err := etcdtest.PutTask(ctx, s.pd, "pitr-registered", startTS); err != nil {
		return err
	}
	op, stop, err := startScripted(ctx, s, registeredYAML, testenv.PodDeath)
	if err != nil {
		return err
	}
	defer stop()
	if err := waitRecovered(ctx, env, "pitr-registered", op, func(*unstructured.Unstructured) {}); err != nil {
		return err
	}
	fmt.Println("  no second run: status.commitTs is the task's start ts")
	if err := k.show("get", "bk", "pitr-registered", "-o",
		`custom-columns=COMMITTS:.status.commitTs,PHASE:.status.logSubCommandStatuses.log-start.phase,RECORD:.status.backoffRetryStatus[0].retryReason`); err != nil {
		return err
	}
	return k.showEvents("pitr-registered")
}
