package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TiDBOperatorNamespace is where the controller-manager runs (its NAMESPACE) and keeps
// its leader-election Lease.
const TiDBOperatorNamespace = "tidb-admin"

// How soon TiDB Operator's tracker (v1.6.4+) turns a change in PD into a write on a running
// log Backup. The tracker keeps a PD reading for TiDBOperatorTrackerPeriod (its fixed
// refreshCheckpointTsPeriod) and refreshes it on that ticker or on the first sync after it
// expired. A running log Backup is synced only on the informer's resync
// (TiDBOperatorResync, -resync-duration): the update handler skips Running log backups, so
// neither the tracker's own checkpoint writes nor ours start a sync. A resync a moment
// before the reading expires reuses it, and the next one comes a whole resync later:
// TiDBOperatorNoticesPD is the worst case, not counting the load on the machine.
//
// Seen in CI on 2026-12-05: a reading taken at :53.299, resyncs at :23.22 and :53.22,
// so the resync 59.92 s into the reading reused it and the change was written 90 s after
// it was made, at the deadline of a story that waited exactly 90 s.
const (
	TiDBOperatorTrackerPeriod = time.Minute
	TiDBOperatorResync        = 30 * time.Second
	TiDBOperatorNoticesPD     = TiDBOperatorTrackerPeriod + TiDBOperatorResync
)

// TiDBOperator is TiDB Operator's real controller-manager (the binary
// hack/envtest-assets.sh builds from its module), run as a process against the test API
// server: its backup controller, its BackupSchedule controller and, since v1.6.4, its
// log-backup tracker act on the tests' objects as they do in a cluster.
//
// The tracker dials PD's Service by name, <cluster>-pd.<namespace>:2379. No such name
// resolves here, and the machine's own resolver must stay untouched, so the process runs
// in a mount namespace of its own (unshare, as root) with its own /etc/hosts, written once
// at start from the names given to StartTiDBOperator: each maps a Service name to a
// loopback address where a test's etcd (package etcdtest) plays PD's. They are all known
// up front because Go's resolver may keep an older /etc/hosts for 5 seconds, and a
// tracker that cannot reach PD marks a running backup Failed at once.
type TiDBOperator struct {
	// LogPath is the controller-manager's log (klog, -v=4).
	LogPath string
	// Proxy stands between the controller-manager and the API server: every request of
	// the controller-manager passes it, and a story can hold chosen writes (AddHold).
	Proxy *APIProxy

	cmd  *exec.Cmd
	done chan error
}

// StartTiDBOperator starts the controller-manager and waits until it holds its Lease.
// selector (its -selector flag), if set, limits it to TiDB Operator objects with those
// labels: suites that model TiDB Operator themselves share the API server.
// hosts maps names to loopback addresses in its /etc/hosts (see the type's doc).
func (e *Env) StartTiDBOperator(ctx context.Context, selector string, hosts map[string]string) (*TiDBOperator, error) {
	bin := filepath.Join(e.AssetsDir, TiDBOperatorBinary)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: TiDBOperatorNamespace}}
	if err := client.IgnoreAlreadyExists(e.Client.Create(ctx, ns)); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", TiDBOperatorNamespace, err)
	}
	o := &TiDBOperator{LogPath: filepath.Join(e.Dir, "tidb-controller-manager.log"), done: make(chan error, 1)}
	hostsPath := filepath.Join(e.Dir, "hosts")
	if err := writeHosts(hostsPath, hosts); err != nil {
		return nil, err
	}
	var err error
	if o.Proxy, err = StartAPIProxy(e.Config, e.Client); err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(e.Dir, "tidb-controller-manager.kubeconfig")
	if err := o.Proxy.WriteKubeconfig(kubeconfig); err != nil {
		_ = o.Proxy.Close()
		return nil, err
	}
	logFile, err := os.Create(o.LogPath)
	if err != nil {
		_ = o.Proxy.Close()
		return nil, err
	}
	// sh -c: bind the hosts file over /etc/hosts inside the new mount namespace, then
	// become the controller-manager.
	args := []string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$TEST_HOSTS_FILE" /etc/hosts && exec "$@"`, "sh",
		bin, "-tidb-backup-manager-image=pingcap/tidb-backup-manager:test", "-v=4", "-logtostderr=true",
		// Short leader election: a controller-manager of an earlier test run may have
		// left its Lease behind.
		"-leader-lease-duration=4s", "-leader-renew-deadline=3s", "-leader-retry-period=1s",
		// One controller-manager serves every story at once (they run in parallel). At
		// client-go's default 5 QPS it throttled itself: a sync waited 11 s for its turn, so
		// stories timed out and Settle's 3 s hold passed between two of its writes. A
		// cluster with that many Backups at once is set up the same way (the chart's
		// kubeClientQPS, kubeClientBurst and workers).
		"-kube-client-qps=200", "-kube-client-burst=400", "-workers=16",
		// Its default, spelled out: TiDBOperatorNoticesPD counts on it.
		"-resync-duration=" + TiDBOperatorResync.String()}
	if selector != "" {
		args = append(args, "-selector="+selector)
	}
	o.cmd = exec.Command(args[0], args[1:]...)
	o.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "NAMESPACE="+TiDBOperatorNamespace, "TEST_HOSTS_FILE="+hostsPath)
	o.cmd.Stdout, o.cmd.Stderr = logFile, logFile
	o.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := o.cmd.Start(); err != nil {
		_ = logFile.Close()
		_ = o.Proxy.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { o.done <- o.cmd.Wait(); _ = logFile.Close() }()
	if err := o.waitLeading(ctx, 60*time.Second); err != nil {
		_ = o.Stop()
		return nil, err
	}
	return o, nil
}

// waitLeading waits for the log line that says the controllers run.
func (o *TiDBOperator) waitLeading(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(o.LogPath)
		if bytes.Contains(b, []byte("cache of informer factories sync successfully")) {
			return nil
		}
		select {
		case err := <-o.done:
			o.done <- err
			return fmt.Errorf("tidb-controller-manager exited: %v; log:\n%s", err, tail(b, 4000))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tidb-controller-manager did not start its controllers in %s; log:\n%s", timeout, tail(b, 4000))
		}
	}
}

// writeHosts writes the machine's /etc/hosts followed by hosts, in name order.
func writeHosts(path string, hosts map[string]string) error {
	base, err := os.ReadFile("/etc/hosts")
	if err != nil {
		return err
	}
	b := bytes.NewBuffer(base)
	names := make([]string, 0, len(hosts))
	for n := range hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(b, "%s %s\n", hosts[n], n)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// Log returns the controller-manager's log so far.
func (o *TiDBOperator) Log() string {
	b, _ := os.ReadFile(o.LogPath)
	return string(b)
}

// Stop ends the controller-manager.
func (o *TiDBOperator) Stop() error {
	if o.cmd.Process == nil {
		return nil
	}
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		_ = o.cmd.Process.Kill()
		<-o.done
	}
	return o.Proxy.Close()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// TidbClusterGVK is TiDB Operator's TidbCluster.
var TidbClusterGVK = BackupGVK.GroupVersion().WithKind("TidbCluster")

// CreateReadyTidbCluster creates the TidbCluster a Backup's spec.br.cluster names, looking
// as TiDB Operator's backup controller requires before it runs a Job: Ready, with a TiKV
// that supports log backup. Nothing runs it here, so TiDB Operator's own TidbCluster
// controller must leave it alone, or it would find no PD and write Ready=False: its
// tikv.tidb.pingcap.com/delete-slots annotation does not parse, TiDB Operator's
// validation of the TidbCluster fails, and that controller then never writes it
// (tidbcluster.defaultTidbClusterControl.UpdateTidbCluster returns at once). The backup
// controller does not validate it.
func CreateReadyTidbCluster(ctx context.Context, c client.Client, namespace, name string, labels map[string]string) error {
	tc := Empty(TidbClusterGVK)
	tc.SetNamespace(namespace)
	tc.SetName(name)
	tc.SetLabels(labels)
	tc.SetAnnotations(map[string]string{"tikv.tidb.pingcap.com/delete-slots": "not a JSON list: leave this cluster alone"})
	tc.Object["spec"] = map[string]any{
		"version": "v8.5.0",
		"pd":      map[string]any{"baseImage": "pingcap/pd", "replicas": int64(1)},
		"tikv":    map[string]any{"baseImage": "pingcap/tikv", "replicas": int64(1)},
		"tidb":    map[string]any{"baseImage": "pingcap/tidb", "replicas": int64(1)},
	}
	if err := c.Create(ctx, tc); err != nil {
		return fmt.Errorf("create TidbCluster %s/%s: %w", namespace, name, err)
	}
	tc.Object["status"] = map[string]any{"conditions": []any{map[string]any{
		"type": "Ready", "status": "True", "reason": "Ready", "message": "TiDB cluster is fully up and running",
		"lastUpdateTime": time.Now().UTC().Format(time.RFC3339), "lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
	}}}
	if err := c.Update(ctx, tc); err != nil {
		return fmt.Errorf("mark TidbCluster %s/%s ready: %w", namespace, name, err)
	}
	return nil
}

// TiDBOperatorVersion is the version of the TiDB Operator in KUBEBUILDER_ASSETS, as
// hack/envtest-assets.sh (or hack/compat.sh) recorded it in tidb-operator-version.
func (e *Env) TiDBOperatorVersion() (string, error) {
	b, err := os.ReadFile(filepath.Join(e.AssetsDir, "tidb-operator-version"))
	if err != nil {
		return "", fmt.Errorf("which TiDB Operator: %w", err)
	}
	return string(bytes.TrimSpace(b)), nil
}
