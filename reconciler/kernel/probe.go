package kernel

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Defaults of Config.
const (
	// DefaultEndpointTemplate is PD's client service, as TiDB Operator names it.
	DefaultEndpointTemplate = "http://{cluster}-pd.{namespace}:2379"
	// DefaultTimeout bounds one probe: connecting and the one read.
	DefaultTimeout = 3 * time.Second
	// DefaultCacheTTL is how long a probe's result is reused for the same task.
	DefaultCacheTTL = 10 * time.Second
)

// maxLastErrors bounds the per-store errors read (one per TiKV store).
const maxLastErrors = 32

// Target names a task and the Backup asking about it.
type Target struct {
	// Backup is whose reconcile waits for the result: it is notified and it holds the
	// client until Release.
	Backup types.NamespacedName
	// Cluster and Namespace locate the TidbCluster (spec.br.cluster and
	// spec.br.clusterNamespace, defaulting to the Backup's namespace).
	Cluster, Namespace string
	// Task is the log backup task's name (the Backup's).
	Task string
	// Attempt names what the answer is for (the retry about to start): a result is only
	// reused for the same attempt, so an answer read before an earlier re-run can never
	// decide a later one.
	Attempt string
}

// Result is one probe's outcome: the task as the cluster records it, or why it could not
// be read.
type Result struct {
	Task     *Task // nil when Err is set
	Err      error
	Endpoint string
	At       time.Time
}

// Config configures a Prober.
type Config struct {
	// EndpointTemplate is PD's etcd URL; {cluster} and {namespace} are replaced.
	EndpointTemplate string
	// TLSSecretTemplate names the Secret (in the cluster's namespace) holding the client
	// TLS material: ca.crt, tls.crt and tls.key. Empty: no client TLS. {cluster} and
	// {namespace} are replaced.
	TLSSecretTemplate string
	// Secrets reads the TLS Secret (an uncached reader: Secrets are not watched).
	Secrets client.Reader
	// Timeout bounds one probe.
	Timeout time.Duration
	// CacheTTL is how long a result is reused.
	CacheTTL time.Duration
	// Notify is called, from the probe's goroutine, for each Backup waiting on a result
	// that just arrived: the reconciler enqueues it.
	Notify func(types.NamespacedName)
	// Clock dates and expires results; nil: the real clock.
	Clock clock.Clock
	Log   logr.Logger
	// Observe, if set, is told each probe's outcome (for metrics).
	Observe func(Result)
}

var placeholder = regexp.MustCompile(`\{[^}]*\}`)

// expand replaces {cluster} and {namespace}.
func expand(template, cluster, namespace string) string {
	return strings.NewReplacer("{cluster}", cluster, "{namespace}", namespace).Replace(template)
}

// ValidateTemplates checks the templates as a user wrote them; the errors name the template.
func ValidateTemplates(endpoint, tlsSecret string) error {
	var errs []error
	for _, p := range placeholder.FindAllString(endpoint+tlsSecret, -1) {
		if p != "{cluster}" && p != "{namespace}" {
			errs = append(errs, fmt.Errorf("unknown placeholder %s (known: {cluster}, {namespace})", p))
		}
	}
	u, err := url.Parse(expand(endpoint, "c", "ns"))
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("endpoint template %q: %w", endpoint, err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("endpoint template %q: the scheme must be http or https", endpoint))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("endpoint template %q: no host", endpoint))
	case tlsSecret != "" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("endpoint template %q: client TLS needs an https endpoint", endpoint))
	}
	return errors.Join(errs...)
}

// Prober reads tasks from PD's etcd. Lookup never blocks: it answers from the cache or
// starts a probe in the background and notifies the Backup when the result is in. It is
// a manager.Runnable: it runs until the manager stops, then ends its probes and closes
// its clients.
type Prober struct {
	cfg    Config
	ctx    context.Context // probes run under it; cancelled by Close
	cancel context.CancelFunc

	results *utilcache.Expiring // Result by endpoint, task and attempt
	flight  singleflight.Group  // the probes running, by the same key
	pool    *clientPool

	mu     sync.Mutex // orders Close against starting a probe
	closed bool
	wg     sync.WaitGroup
}

var (
	_ manager.Runnable               = (*Prober)(nil)
	_ manager.LeaderElectionRunnable = (*Prober)(nil)
)

// New returns a Prober; Start (or Close) ends it.
func New(cfg Config) (*Prober, error) {
	if cfg.EndpointTemplate == "" {
		cfg.EndpointTemplate = DefaultEndpointTemplate
	}
	if err := ValidateTemplates(cfg.EndpointTemplate, cfg.TLSSecretTemplate); err != nil {
		return nil, err
	}
	if cfg.TLSSecretTemplate != "" && cfg.Secrets == nil {
		return nil, errors.New("a TLS Secret template needs a Secrets reader")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Prober{cfg: cfg, ctx: ctx, cancel: cancel,
		results: utilcache.NewExpiringWithClock(cfg.Clock), pool: newClientPool()}, nil
}

// Start waits for ctx to end, then closes the prober.
func (p *Prober) Start(ctx context.Context) error {
	<-ctx.Done()
	p.Close()
	return nil
}

// NeedLeaderElection is false: the probe does nothing until the reconciler (which does
// need the lease) asks, and must be up when it does.
func (p *Prober) NeedLeaderElection() bool { return false }

// Timeout is the longest a probe takes.
func (p *Prober) Timeout() time.Duration { return p.cfg.Timeout }

// Endpoint is the PD URL a target's task is read from.
func (p *Prober) Endpoint(t Target) string {
	return expand(p.cfg.EndpointTemplate, t.Cluster, t.Namespace)
}

func (p *Prober) secretName(t Target) string {
	if p.cfg.TLSSecretTemplate == "" {
		return ""
	}
	return expand(p.cfg.TLSSecretTemplate, t.Cluster, t.Namespace)
}

func resultKey(endpoint string, t Target) string {
	return endpoint + "\x00" + t.Task + "\x00" + t.Attempt
}

// clientKey names the client a target's probe uses: one per endpoint and TLS Secret.
func (p *Prober) clientKey(t Target) string {
	return p.Endpoint(t) + "\x00" + t.Namespace + "/" + p.secretName(t)
}

// Lookup returns a result for the target's task and attempt younger than the cache TTL,
// or false after making sure a probe is running; t.Backup is notified when it completes.
func (p *Prober) Lookup(t Target) (Result, bool) {
	key := resultKey(p.Endpoint(t), t)
	p.pool.use(p.clientKey(t), t.Backup)
	if r, ok := p.results.Get(key); ok {
		return r.(Result), true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return Result{Err: errors.New("the kernel probe is shut down"), At: p.cfg.Clock.Now()}, true
	}
	// One probe per key however many Backups ask while it runs; each is notified.
	done := p.flight.DoChan(key, func() (any, error) {
		r := p.Probe(p.ctx, t)
		p.results.Set(key, r, p.cfg.CacheTTL)
		return r, nil
	})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		<-done
		if p.cfg.Notify != nil {
			p.cfg.Notify(t.Backup)
		}
	}()
	return Result{}, false
}

// Probe reads the target's task now, within the configured timeout.
func (p *Prober) Probe(ctx context.Context, t Target) Result {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	r := Result{Endpoint: p.Endpoint(t)}
	if t.Cluster == "" {
		r.Err = errors.New("spec.br.cluster is not set, so PD cannot be located")
	} else {
		r.Task, r.Err = p.read(ctx, t, r.Endpoint)
	}
	r.At = p.cfg.Clock.Now()
	log := p.cfg.Log.WithValues("backup", t.Backup, "endpoint", r.Endpoint, "task", t.Task)
	if r.Err != nil {
		log.Info("Could not read the log backup task from PD", "error", r.Err.Error())
	} else {
		log.V(1).Info("Read the log backup task from PD", "state", r.Task.Summary())
	}
	if p.cfg.Observe != nil {
		p.cfg.Observe(r)
	}
	return r
}

func (p *Prober) read(ctx context.Context, t Target, endpoint string) (*Task, error) {
	cli, err := p.client(ctx, t, endpoint)
	if err != nil {
		return nil, err
	}
	// One transaction: the reads see the same revision.
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpGet(InfoKey(t.Task)),
		clientv3.OpGet(PauseKey(t.Task)),
		clientv3.OpGet(LastErrorPrefix(t.Task), clientv3.WithPrefix(), clientv3.WithLimit(maxLastErrors)),
		clientv3.OpGet(CheckpointPrefix(t.Task), clientv3.WithPrefix(), clientv3.WithLimit(maxCheckpoints)),
		clientv3.OpGet(StorageCheckpointPrefix(t.Task), clientv3.WithPrefix(), clientv3.WithLimit(maxCheckpoints)),
		clientv3.OpGet(pdClusterIDKey),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("read task %s from %s: %w", t.Task, endpoint, err)
	}
	if len(resp.Responses) != 6 {
		return nil, fmt.Errorf("read task %s from %s: %d responses to 6 reads", t.Task, endpoint, len(resp.Responses))
	}
	kvs := func(i int) []*mvccpb.KeyValue { return resp.Responses[i].GetResponseRange().GetKvs() }
	task := &Task{Name: t.Task}
	if info := kvs(0); len(info) > 0 {
		task.Exists = true
		name, startTS, err := decodeTaskInfo(info[0].Value)
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", t.Task, err)
		}
		if name != "" && name != t.Task {
			return nil, fmt.Errorf("task info under %s names task %q", InfoKey(t.Task), name)
		}
		task.StartTS = startTS
	}
	if pause := kvs(1); len(pause) > 0 {
		task.Paused = true
		task.PausedByError, task.PauseMessage = decodePause(pause[0].Value)
	}
	for _, kv := range kvs(2) {
		e, err := decodeStreamBackupError(kv.Value)
		if err != nil {
			e = StoreError{Message: fmt.Sprintf("unreadable error under %s: %v", kv.Key, err)}
		}
		task.LastErrors = append(task.LastErrors, e)
	}
	if task.Exists {
		task.CheckpointTS = globalCheckpoint(t.Task, task.StartTS, kvs(3), kvs(4))
	}
	if id := kvs(5); len(id) > 0 && len(id[0].Value) == 8 {
		// The GC safe point lives under the cluster ID, so it takes a second read. Not
		// knowing it is not an error: the resume's own check (BR's) still stands.
		key := GCSafePointKey(binary.BigEndian.Uint64(id[0].Value))
		if sp, err := cli.Get(ctx, key); err == nil && len(sp.Kvs) > 0 {
			task.GCSafePoint, _ = strconv.ParseUint(string(sp.Kvs[0].Value), 16, 64)
		}
	}
	return task, nil
}

// maxCheckpoints bounds the checkpoint keys read per task (one per store and, from older
// TiKV versions, per region).
const maxCheckpoints = 4096

// globalCheckpoint computes a task's checkpoint as BR does before a resume
// (br/pkg/streamhelper, Task.GetGlobalCheckPointTS): the advancer's central_global if
// present; otherwise the least store checkpoint (the start ts if there is none), raised
// to the greatest storage checkpoint. Region checkpoints do not count, and a value that
// is not 8 bytes is skipped.
func globalCheckpoint(task string, startTS uint64, checkpoints, storage []*mvccpb.KeyValue) uint64 {
	prefix := CheckpointPrefix(task)
	cp, initialized := startTS, false
	for _, kv := range checkpoints {
		if len(kv.Value) != 8 {
			continue
		}
		ts := binary.BigEndian.Uint64(kv.Value)
		suffix := strings.TrimPrefix(string(kv.Key), prefix)
		switch {
		case suffix == "central_global":
			return ts
		case strings.HasPrefix(suffix, "store/"), len(suffix) == 8: // 8 bytes: an old-style store id
			if !initialized || ts < cp {
				cp, initialized = ts, true
			}
		}
	}
	stored := startTS
	for _, kv := range storage {
		if len(kv.Value) == 8 {
			stored = max(stored, binary.BigEndian.Uint64(kv.Value))
		}
	}
	return max(cp, stored)
}

// client returns the pooled client for the endpoint and TLS identity, creating it (or
// replacing it when the TLS Secret changed), and counts t.Backup among its users.
func (p *Prober) client(ctx context.Context, t Target, endpoint string) (*clientv3.Client, error) {
	secret := p.secretName(t)
	var tlsConfig *tls.Config
	var sum [sha256.Size]byte
	if secret != "" {
		var err error
		if tlsConfig, sum, err = p.loadTLS(ctx, t.Namespace, secret); err != nil {
			return nil, err
		}
	}
	return p.pool.get(p.clientKey(t), t.Backup, sum, func() (*clientv3.Client, error) {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{endpoint},
			DialTimeout: p.cfg.Timeout,
			TLS:         tlsConfig,
			// PD logs what matters; the client's own zap logging would bypass ours.
			Logger: zap.NewNop(),
		})
		if err != nil {
			return nil, fmt.Errorf("etcd client for %s: %w", endpoint, err)
		}
		return cli, nil
	})
}

// loadTLS reads the client TLS Secret: ca.crt (else the system roots) and the tls.crt /
// tls.key pair.
func (p *Prober) loadTLS(ctx context.Context, namespace, name string) (*tls.Config, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	s := &corev1.Secret{}
	if err := p.cfg.Secrets.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s); err != nil {
		return nil, sum, fmt.Errorf("client TLS Secret %s/%s: %w", namespace, name, err)
	}
	h := sha256.New()
	for _, k := range []string{"ca.crt", corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		h.Write(s.Data[k])
		h.Write([]byte{0})
	}
	copy(sum[:], h.Sum(nil))
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := s.Data["ca.crt"]; len(ca) > 0 {
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(ca) {
			return nil, sum, fmt.Errorf("client TLS Secret %s/%s: ca.crt holds no PEM certificate", namespace, name)
		}
	}
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) > 0 || len(key) > 0 {
		pair, err := tls.X509KeyPair(crt, key)
		if err != nil {
			return nil, sum, fmt.Errorf("client TLS Secret %s/%s: tls.crt and tls.key: %w", namespace, name, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, sum, nil
}

// Release drops a Backup from the clients it used and closes those nobody uses any
// more. The reconciler calls it when the Backup is deleted.
func (p *Prober) Release(backup types.NamespacedName) { p.pool.release(backup) }

// Clients is how many clients are open (for tests and metrics).
func (p *Prober) Clients() int { return p.pool.len() }

// Close stops running probes, waits for them and closes every client.
func (p *Prober) Close() {
	// Under the lock: a Lookup either started its probe (wg.Add) before, or sees closed
	// and starts none, so Wait never races an Add.
	p.mu.Lock()
	p.closed = true
	p.cancel()
	p.mu.Unlock()
	p.wg.Wait()
	p.pool.closeAll()
}
