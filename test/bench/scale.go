package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

const workers = 16

// parallel runs f(0..n-1) on a few workers and returns the first error.
func parallel(n int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// scale measures the reconciler against N log Backups whose Jobs fail at once.
func scale(sizes, binary string) error {
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer env.Stop()
	fmt.Println("\n### Reconciler: N log Backups whose Jobs fail at once")
	fmt.Println()
	fmt.Println("| Backups | all first records in | records/s | plain update loop/s, alone | ratio | plain loop/s beside N Job writes | ratio | writes per Backup | writes in a no-op pass | peak RSS |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	// A size listed more than once is run again; the medians follow the table. The rate
	// ratio moves by several points between runs of the same size on this machine.
	runs := map[int][]scaleResult{}
	var order []int
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		r, err := scaleOnce(env, n, binary)
		if err != nil {
			return err
		}
		if runs[n] == nil {
			order = append(order, n)
		}
		runs[n] = append(runs[n], r)
	}
	for _, n := range order {
		if rs := runs[n]; len(rs) > 1 {
			ratios, loaded, rss := make([]float64, len(rs)), make([]float64, len(rs)), make([]float64, len(rs))
			for i, r := range rs {
				ratios[i], loaded[i], rss[i] = r.ratio, r.loadedRatio, r.rssMiB
			}
			fmt.Printf("\nAt %d Backups, %d runs: rate ratio median %.0f%% (%s) of the plain loop alone, %.0f%% (%s) of the plain loop beside the Job writes; peak RSS median %.1f MiB (%s).\n",
				n, len(rs), median(ratios), join(ratios, "%.0f%%"), median(loaded), join(loaded, "%.0f%%"), median(rss), join(rss, "%.1f"))
		}
	}
	return nil
}

// scaleResult is what the medians are taken of.
type scaleResult struct{ ratio, loadedRatio, rssMiB float64 }

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func join(v []float64, format string) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, ", ")
}

func scaleOnce(env *testenv.Env, n int, binary string) (scaleResult, error) {
	ctx := context.Background()
	c := env.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "scale-"}}
	if err := c.Create(ctx, ns); err != nil {
		return scaleResult{}, err
	}
	name := func(i int) string { return fmt.Sprintf("pitr-%d", i) }
	// N log Backups with log-start running, and their Jobs, as TiDB Operator leaves them.
	err := parallel(n, func(i int) error {
		b, err := testenv.Object(fmt.Sprintf(scaleBackup, name(i)))
		if err != nil {
			return err
		}
		b.SetNamespace(ns.Name)
		if err := c.Create(ctx, b); err != nil {
			return err
		}
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "backup-" + name(i) + "-log-start", Namespace: ns.Name,
				Labels: map[string]string{"app.kubernetes.io/component": "backup", "app.kubernetes.io/managed-by": "backup-operator"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "pingcap.com/v1alpha1", Kind: "Backup", Name: name(i),
					UID: b.GetUID(), Controller: ptr.To(true)}}},
			Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "backup", Image: "pingcap/br"}}}}},
		}
		return c.Create(ctx, job)
	})
	if err != nil {
		return scaleResult{}, fmt.Errorf("set up %d Backups: %w", n, err)
	}
	progress("%d Backups and Jobs created", n)

	// The real binary, in its own process, so its memory is its own.
	port, _ := testenv.FreePort()
	probe, _ := testenv.FreePort()
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	cmd := exec.Command(binary, "serve", "--components=reconciler", "--kubeconfig="+env.Kubeconfig,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port), fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probe),
		"--zap-log-level=error", "--kube-api-qps=1000", "--kube-api-burst=2000") // as the baseline's client (envtest's)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return scaleResult{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	reconciles := func() float64 {
		return metric(metricsURL, `controller_runtime_reconcile_total{controller="log-backup-retry",`) // every result
	}
	puts := func() float64 { // writes of Backups: updates, and the merge patches of new records
		return metric(metricsURL, `rest_client_requests_total{code="200",host=`, `method="PUT"`) +
			metric(metricsURL, `rest_client_requests_total{code="200",host=`, `method="PATCH"`)
	}
	if err := waitFor(2*time.Minute, func() bool { return reconciles() >= float64(n) }); err != nil {
		return scaleResult{}, fmt.Errorf("initial sync of %d Backups: %w", n, err)
	}
	puts0 := puts()
	progress("reconciler synced (%v reconciles)", reconciles())

	// All Jobs fail at once (as fast as the API server takes the status writes).
	// writeJobs reads and writes each Job once: its status (failed), or, for the baseline
	// below, an annotation (a finished Job's status can no longer change).
	writeJobs := func(fail bool) error {
		return parallel(n, func(i int) error {
			j := &batchv1.Job{}
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns.Name, Name: "backup-" + name(i) + "-log-start"}, j); err != nil {
				return err
			}
			if !fail {
				metav1.SetMetaDataAnnotation(&j.ObjectMeta, "bench", "touched")
				return c.Update(ctx, j)
			}
			now := metav1.Now()
			j.Status.StartTime, j.Status.Failed = &now, 1
			j.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now},
				{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now},
			}
			return c.Status().Update(ctx, j)
		})
	}
	start, cpu0 := time.Now(), cpuTime(cmd.Process.Pid)
	if err := writeJobs(true); err != nil {
		return scaleResult{}, err
	}
	progress("all %d Jobs failed in %s (%d records by then)", n, time.Since(start), recorded(ctx, c, ns.Name))
	if err := waitFor(10*time.Minute, func() bool { return recorded(ctx, c, ns.Name) >= n }); err != nil {
		return scaleResult{}, fmt.Errorf("first records: %w", err)
	}
	elapsed := time.Since(start)
	progress("the reconciler used %s of CPU in that window", cpuTime(cmd.Process.Pid)-cpu0)
	puts1 := puts()
	progress("all %d first records in %s", n, elapsed)

	// A no-op pass: every Backup changes (a label), is reconciled, and must cause no write.
	before := reconciles()
	err = parallel(n, func(i int) error {
		b := testenv.Empty(testenv.BackupGVK)
		b.SetNamespace(ns.Name)
		b.SetName(name(i))
		return c.Patch(ctx, b, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"bench":"touched"}}}`)))
	})
	if err != nil {
		return scaleResult{}, err
	}
	if err := waitFor(5*time.Minute, func() bool { return reconciles() >= before+float64(n) }); err != nil {
		return scaleResult{}, fmt.Errorf("no-op pass: %w", err)
	}
	time.Sleep(time.Second)
	puts2 := puts()
	rss := peakRSS(cmd.Process.Pid)
	_ = cmd.Process.Kill()

	// The baseline: a plain read-modify-write loop over the same Backups, 4 workers like
	// the reconciler's default --max-concurrent-reconciles. It runs twice: alone, and
	// beside the same N Job status writes that the reconciler's window contains (the
	// Jobs failing), so that one baseline faces what the reconciler faced.
	plainLoop := func() float64 {
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					b := testenv.Empty(testenv.BackupGVK)
					if c.Get(ctx, types.NamespacedName{Namespace: ns.Name, Name: name(i)}, b) == nil {
						_ = unstructured.SetNestedField(b.Object, "x", "status", "bench")
						_ = c.Update(ctx, b)
					}
				}
			}()
		}
		wg.Wait()
		return float64(n) / time.Since(start).Seconds()
	}
	plainRate := plainLoop()
	failed := make(chan error, 1)
	go func() { failed <- writeJobs(false) }()
	loadedRate := plainLoop()
	if err := <-failed; err != nil {
		return scaleResult{}, err
	}
	rate := float64(n) / elapsed.Seconds()
	res := scaleResult{ratio: 100 * rate / plainRate, loadedRatio: 100 * rate / loadedRate, rssMiB: float64(rss) / 1024}
	fmt.Printf("| %d | %s | %.0f | %.0f | %.0f%% | %.0f | %.0f%% | %.2f | %.0f | %.1f MiB |\n", n, elapsed.Round(10*time.Millisecond), rate,
		plainRate, res.ratio, loadedRate, res.loadedRatio, (puts1-puts0)/float64(n), puts2-puts1, res.rssMiB)
	return res, clearNamespace(ctx, c, ns.Name)
}

// clearNamespace deletes what a size left behind before the next one runs. Deleting the namespace
// is not enough: envtest runs no namespace or garbage collector, so its Backups and Jobs
// would stay, and the next size's reconciler would cache (and be measured with) them too.
func clearNamespace(ctx context.Context, c client.Client, ns string) error {
	backups := testenv.Empty(testenv.BackupGVK)
	if err := c.DeleteAllOf(ctx, backups, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("delete Backups: %w", err)
	}
	// Background: Jobs default to orphaning their pods, which sets a finalizer that only
	// the (absent) garbage collector removes.
	if err := c.DeleteAllOf(ctx, &batchv1.Job{}, client.InNamespace(ns), client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		return fmt.Errorf("delete Jobs: %w", err)
	}
	return waitFor(2*time.Minute, func() bool {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(testenv.BackupGVK.GroupVersion().WithKind("BackupList"))
		jobs := &batchv1.JobList{}
		return c.List(ctx, list, client.InNamespace(ns)) == nil && len(list.Items) == 0 &&
			c.List(ctx, jobs, client.InNamespace(ns)) == nil && len(jobs.Items) == 0
	})
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[scale %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// recorded counts the Backups in a namespace that have a retry record.
func recorded(ctx context.Context, c client.Client, ns string) int {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(testenv.BackupGVK.GroupVersion().WithKind("BackupList"))
	if c.List(ctx, list, client.InNamespace(ns)) != nil {
		return 0
	}
	count := 0
	for _, b := range list.Items {
		if recs, _, _ := unstructured.NestedSlice(b.Object, "status", "backoffRetryStatus"); len(recs) > 0 {
			count++
		}
	}
	return count
}

// metric sums the samples of a Prometheus text endpoint whose line starts with prefix
// and contains every part of also.
func metric(url, prefix string, also ...string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		ok := true
		for _, a := range also {
			ok = ok && strings.Contains(line, a)
		}
		if ok {
			v, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
			sum += v
		}
	}
	return sum
}

func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// cpuTime is the user and system CPU time a process has used (Linux clock ticks of 10 ms).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// peakRSS is a process's high-water resident set, in KiB.
func peakRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return -1
}

// scaleBackup is a log Backup whose log-start runs; its retry is far off, so the
// measurement sees exactly one decision per Backup.
const scaleBackup = `
apiVersion: pingcap.com/v1alpha1
kind: Backup
metadata:
  name: %s
spec:
  backupMode: log
  br: {cluster: basic}
  s3: {provider: aws, bucket: backups, prefix: scale}
  backoffRetryPolicy: {minRetryDuration: 10m, maxRetryTimes: 5, retryTimeout: 2h}
status:
  phase: Running
  logSubCommandStatuses:
    log-start: {command: log-start, phase: Running}
`
