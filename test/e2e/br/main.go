// Command br plays BR's `br log start` in the end-to-end node's BR image (make e2e), where
// TiDB Operator's real backup-manager runs it as it runs BR: as /var/lib/br-bin/br, copied
// there by the Job's init container, with the arguments it builds from the Backup. No
// TiKV runs on the node, so this binary does what BR's log start leaves behind, against
// the story's PD (an etcd), by the PD address BR is given (--pd, TiDB Operator's
// <cluster>-pd.<namespace>:2379, resolved by the node's cluster DNS):
//   - success: the task registered in PD as BR registers it (package etcdtest writes the
//     keys as BR spells them), and the backupmeta file written into the storage
//     (--storage=local://...), whose start version the backup-manager reads as commitTs;
//   - failure: a BR error on stderr and exit status 1, which the backup-manager turns into
//     a Failed log-start entry.
//
// Which one is a script the story keeps in the same PD: etcdtest.BRScriptKey(task) holds the outcomes
// still to play, comma-separated; each run takes the first (in a transaction, so two runs
// never take the same one), and runs beyond the script succeed.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	backuppb "github.com/pingcap/kvproto/pkg/brpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
)

// The outcomes a script names.
const (
	succeed = "succeed"
	brError = "br-error"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		// BR prints its error last, on stderr, and exits 1.
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 || args[0] != "log" || args[1] != "start" {
		return fmt.Errorf("[BR:Common:ErrInvalidArgument]this BR plays only `log start`, not %q", args)
	}
	flags := map[string]string{}
	for _, a := range args[2:] {
		if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok {
			flags[k] = v
		}
	}
	fmt.Printf("br %s\n", strings.Join(args, " "))
	task, pd, storage := flags["task-name"], flags["pd"], flags["storage"]
	dir, local := strings.CutPrefix(storage, "local://")
	if task == "" || pd == "" || !local {
		return fmt.Errorf("[BR:Common:ErrInvalidArgument]want --task-name, --pd and --storage=local://, got %q", args)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{pd}, DialTimeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("[BR:Common:ErrFailedToConnect]failed to connect to PD %s: %v", pd, err)
	}
	defer cli.Close()
	outcome, err := next(ctx, cli, task)
	if err != nil {
		return fmt.Errorf("[BR:Common:ErrFailedToConnect]failed to connect to PD %s: %v", pd, err)
	}
	fmt.Printf("br: outcome %s\n", outcome)
	switch outcome {
	case brError:
		return fmt.Errorf("[BR:Common:ErrFailedToConnect]failed to connect to PD: context deadline exceeded")
	case succeed:
	default:
		return fmt.Errorf("[BR:Common:ErrInvalidArgument]unknown scripted outcome %q", outcome)
	}
	startTS := kernel.TSO(time.Now())
	if err := etcdtest.PutTask(ctx, cli, task, startTS); err != nil {
		return fmt.Errorf("[BR:PD:ErrPDUpdateFailed]register task %s: %v", task, err)
	}
	meta := backuppb.BackupMeta{StartVersion: startTS, ClusterVersion: "v8.5.0"}
	data, err := meta.Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("[BR:ExternalStorage:ErrStorageInvalidConfig]%v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "backupmeta"), data, 0o644); err != nil {
		return fmt.Errorf("[BR:ExternalStorage:ErrStorageUnknown]%v", err)
	}
	fmt.Printf("br: task %s registered, start ts %d\n", task, startTS)
	return nil
}

// next takes the first outcome of the task's script ("succeed" when none is left).
func next(ctx context.Context, cli *clientv3.Client, task string) (string, error) {
	key := etcdtest.BRScriptKey(task)
	for {
		got, err := cli.Get(ctx, key)
		if err != nil {
			return "", err
		}
		if len(got.Kvs) == 0 || len(got.Kvs[0].Value) == 0 {
			return succeed, nil
		}
		kv := got.Kvs[0]
		first, rest, _ := strings.Cut(string(kv.Value), ",")
		txn, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpPut(key, rest)).Commit()
		if err != nil {
			return "", err
		}
		if txn.Succeeded {
			return first, nil
		}
	}
}
