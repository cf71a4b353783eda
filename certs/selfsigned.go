package certs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// Keys of the self-signed Secret. tls.crt and tls.key make it a kubernetes.io/tls Secret.
const (
	SecretCACert        = "ca.crt"
	SecretCAKey         = "ca.key"
	SecretBundle        = "ca-bundle.crt"
	RotatedAtAnnotation = "tidb-backup-guard.io/ca-rotated-at"
)

// SelfSignedOptions configure a SelfSignedSource.
type SelfSignedOptions struct {
	Client kubernetes.Interface
	// Namespace and SecretName locate the Secret, the source of truth every replica shares.
	Namespace, SecretName string
	// MutatingConfig and ValidatingConfig name the webhook configurations whose caBundle
	// this source keeps; no other configuration is touched.
	MutatingConfig, ValidatingConfig string
	Config                           SelfSignedConfig
	Clock                            clock.PassiveClock
	// Resync bounds the time between two checks when nothing changes.
	Resync time.Duration
	// Settle is how long a new CA must have been in both webhook configurations before
	// this replica serves a certificate it signed: the API server reads configurations
	// through an informer, a moment after they are written.
	Settle  time.Duration
	Metrics *Metrics
	Log     logr.Logger
}

// SelfSignedSource keeps a CA and a serving certificate in a Secret, injects the CA
// bundle into the webhook configurations, renews ahead of expiry and serves the current
// certificate. Every replica runs one; they agree through the Secret (creation and
// updates carry resourceVersions, so exactly one writer wins each change).
//
// The rule that keeps rotation safe: a replica only switches to a certificate whose CA
// both webhook configurations already trust. A rotation writes the new CA, the new
// certificate and a bundle holding old and new CA in one update; each replica injects the
// bundle, then switches; the old CA leaves the bundle after Config.Overlap.
type SelfSignedSource struct {
	holder
	opts SelfSignedOptions
	// trustedSince is when this replica first saw each CA trusted by both configurations.
	trustedSince map[string]time.Time
}

var _ Source = (*SelfSignedSource)(nil)

// NewSelfSignedSource checks the options; Start does the work.
func NewSelfSignedSource(opts SelfSignedOptions) (*SelfSignedSource, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Namespace == "" || opts.SecretName == "" {
		return nil, errors.New("self-signed certificates need a namespace and a Secret name")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Resync <= 0 {
		opts.Resync = time.Minute
	}
	if opts.Settle <= 0 {
		opts.Settle = 5 * time.Second
	}
	if opts.Config.Overlap <= opts.Settle {
		return nil, fmt.Errorf("the CA overlap (%s) must be longer than the settle time (%s)", opts.Config.Overlap, opts.Settle)
	}
	return &SelfSignedSource{holder: holder{metrics: opts.Metrics}, opts: opts, trustedSince: map[string]time.Time{}}, nil
}

// Start keeps the certificate current until ctx is done.
func (s *SelfSignedSource) Start(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	s.watch(ctx, s.opts.Client.CoreV1().RESTClient(), "secrets", s.opts.Namespace, s.opts.SecretName, &corev1.Secret{}, poke)
	ar := s.opts.Client.AdmissionregistrationV1().RESTClient()
	s.watch(ctx, ar, "mutatingwebhookconfigurations", "", s.opts.MutatingConfig, &admissionregistrationv1.MutatingWebhookConfiguration{}, poke)
	s.watch(ctx, ar, "validatingwebhookconfigurations", "", s.opts.ValidatingConfig, &admissionregistrationv1.ValidatingWebhookConfiguration{}, poke)

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-timer.C:
		}
		next, err := s.sync(ctx)
		if err != nil {
			s.metrics.failed()
			s.opts.Log.Info("Certificate sync failed; trying again", "error", err.Error())
			next = time.Second
		}
		if next > s.opts.Resync {
			next = s.opts.Resync
		}
		timer.Reset(next)
	}
}

// watch pokes on every change of one named object.
func (s *SelfSignedSource) watch(ctx context.Context, c cache.Getter, resource, namespace, name string, obj runtime.Object, poke func()) {
	lw := cache.NewListWatchFromClient(c, resource, namespace, fields.OneTermEqualSelector("metadata.name", name))
	inf := cache.NewSharedInformer(lw, obj, 0)
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	})
	go inf.RunWithContext(ctx)
}

// errRetry asks for another sync right away: another replica wrote first.
var errRetry = errors.New("another writer was first")

// sync brings Secret, webhook configurations and the served certificate in line, and
// returns when to look again.
func (s *SelfSignedSource) sync(ctx context.Context) (time.Duration, error) {
	now := s.opts.Clock.Now()
	trusted, hooks, err := s.trusted(ctx)
	if err != nil {
		return 0, err
	}
	secret, err := s.opts.Client.CoreV1().Secrets(s.opts.Namespace).Get(ctx, s.opts.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		secret, err = nil, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get secret: %w", err)
	}
	cur, err := decodeState(secret)
	if err != nil {
		s.opts.Log.Info("The certificate Secret cannot be read; replacing it", "secret", s.opts.SecretName, "error", err.Error())
	}
	state, reason, err := Plan(cur, trusted, s.opts.Config, now)
	if err != nil {
		return 0, err
	}
	if reason != "" {
		if err := s.write(ctx, secret, state); err != nil {
			if errors.Is(err, errRetry) {
				return 0, nil
			}
			return 0, err
		}
		s.opts.Log.Info("Updated the certificate Secret", "secret", s.opts.SecretName, "change", reason,
			"caNotAfter", state.CA.Cert.NotAfter, "servingNotAfter", state.Serving.Cert.NotAfter, "bundle", len(state.Bundle))
	}
	injected := true
	for _, kind := range []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"} {
		if err := s.inject(ctx, kind, state.Bundle); err != nil {
			injected = false
			if !errors.Is(err, errRetry) {
				s.opts.Log.Info("Injecting the CA bundle failed", "configuration", kind, "error", err.Error())
			}
		}
	}
	if injected {
		trusted = state.Bundle
	}
	s.noteTrusted(trusted, now)
	wait := s.serve(state, trusted, hooks, now)
	switch {
	case !injected:
		return time.Second, nil
	case wait > 0:
		return wait, nil
	}
	return nextCheck(state, s.opts.Config, now), nil
}

// noteTrusted remembers when each trusted CA was first seen trusted.
func (s *SelfSignedSource) noteTrusted(trusted Bundle, now time.Time) {
	seen := map[string]bool{}
	for _, c := range trusted {
		k := string(c.Raw)
		seen[k] = true
		if _, ok := s.trustedSince[k]; !ok {
			s.trustedSince[k] = now
		}
	}
	for k := range s.trustedSince {
		if !seen[k] {
			delete(s.trustedSince, k)
		}
	}
}

// serve switches to the state's certificate once the API server has trusted its CA for
// the settle time (at once when nothing is served yet, or when no webhook is registered
// to call this server). It returns how long to wait before the switch can happen.
func (s *SelfSignedSource) serve(state *State, trusted Bundle, hooks int, now time.Time) time.Duration {
	cur := s.current()
	if cur != nil && cur.Leaf != nil && cur.Leaf.Equal(state.Serving.Cert) {
		return 0
	}
	if cur != nil && hooks > 0 {
		if !trusted.Contains(state.CA.Cert) {
			s.opts.Log.Info("Waiting for the webhook configurations to trust the new CA before serving its certificate")
			return time.Second
		}
		// A renewal under an already trusted CA switches at once; a new CA waits.
		if since := s.trustedSince[string(state.CA.Cert.Raw)]; !(cur.Leaf != nil && SignedBy(cur.Leaf, state.CA.Cert)) && now.Sub(since) < s.opts.Settle {
			return s.opts.Settle - now.Sub(since)
		}
	}
	c, err := state.Serving.TLS()
	if err != nil {
		s.metrics.failed()
		s.opts.Log.Info("The serving certificate cannot be used", "error", err.Error())
		return time.Second
	}
	s.set(c)
	s.opts.Log.Info("Serving a new certificate", "notAfter", state.Serving.Cert.NotAfter, "names", s.opts.Config.Names)
	return 0
}

// nextCheck is the earliest of the renewals and the end of the overlap.
func nextCheck(st *State, cfg SelfSignedConfig, now time.Time) time.Duration {
	next := RenewalTime(st.Serving.Cert)
	if t := RenewalTime(st.CA.Cert); t.Before(next) {
		next = t
	}
	if len(st.Bundle) > 1 {
		if t := st.RotatedAt.Add(cfg.Overlap); t.Before(next) {
			next = t
		}
		for _, c := range st.Bundle {
			if c.NotAfter.Before(next) {
				next = c.NotAfter
			}
		}
	}
	d := next.Sub(now)
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return d
}

// trusted returns the CAs every webhook of both configurations trusts, and how many
// webhooks there are. Missing configurations count as none.
func (s *SelfSignedSource) trusted(ctx context.Context) (Bundle, int, error) {
	var bundles [][]byte
	ar := s.opts.Client.AdmissionregistrationV1()
	m, err := ar.MutatingWebhookConfigurations().Get(ctx, s.opts.MutatingConfig, metav1.GetOptions{})
	switch {
	case err == nil:
		for _, w := range m.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
	case !apierrors.IsNotFound(err):
		return nil, 0, fmt.Errorf("get %s: %w", s.opts.MutatingConfig, err)
	}
	v, err := ar.ValidatingWebhookConfigurations().Get(ctx, s.opts.ValidatingConfig, metav1.GetOptions{})
	switch {
	case err == nil:
		for _, w := range v.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
	case !apierrors.IsNotFound(err):
		return nil, 0, fmt.Errorf("get %s: %w", s.opts.ValidatingConfig, err)
	}
	var common Bundle
	for i, raw := range bundles {
		b, err := ParseBundle(raw)
		if err != nil {
			b = nil // an unreadable bundle trusts nothing
		}
		if i == 0 {
			common = b
			continue
		}
		var both Bundle
		for _, c := range common {
			if b.Contains(c) {
				both = append(both, c)
			}
		}
		common = both
	}
	return common, len(bundles), nil
}

// inject writes bundle into every webhook of one configuration, with a JSON patch that
// tests the resourceVersion and each webhook's name and changes only caBundle: the
// configuration belongs to the chart, and nothing else of it may change.
func (s *SelfSignedSource) inject(ctx context.Context, kind string, bundle Bundle) error {
	ar := s.opts.Client.AdmissionregistrationV1()
	var (
		name, rv string
		names    []string
		current  [][]byte
	)
	switch kind {
	case "mutatingwebhookconfigurations":
		name = s.opts.MutatingConfig
		c, err := ar.MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return client404(err)
		}
		rv = c.ResourceVersion
		for _, w := range c.Webhooks {
			names, current = append(names, w.Name), append(current, w.ClientConfig.CABundle)
		}
	default:
		name = s.opts.ValidatingConfig
		c, err := ar.ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return client404(err)
		}
		rv = c.ResourceVersion
		for _, w := range c.Webhooks {
			names, current = append(names, w.Name), append(current, w.ClientConfig.CABundle)
		}
	}
	want := bundle.PEM()
	ops := []map[string]any{{"op": "test", "path": "/metadata/resourceVersion", "value": rv}}
	for i := range names {
		if bytes.Equal(current[i], want) {
			continue
		}
		ops = append(ops,
			map[string]any{"op": "test", "path": fmt.Sprintf("/webhooks/%d/name", i), "value": names[i]},
			map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": want})
	}
	if len(ops) == 1 {
		return nil
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	var perr error
	if kind == "mutatingwebhookconfigurations" {
		_, perr = ar.MutatingWebhookConfigurations().Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{})
	} else {
		_, perr = ar.ValidatingWebhookConfigurations().Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{})
	}
	if apierrors.IsConflict(perr) || apierrors.IsInvalid(perr) || apierrors.IsNotFound(perr) {
		return errRetry // changed since read (a failed test op): look again
	}
	if perr == nil {
		s.opts.Log.Info("Injected the CA bundle", "configuration", name, "certificates", len(bundle))
	}
	return perr
}

// client404 turns a missing configuration into "nothing to inject".
func client404(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// write creates or updates the Secret with state, guarded by its resourceVersion.
func (s *SelfSignedSource) write(ctx context.Context, secret *corev1.Secret, st *State) error {
	secrets := s.opts.Client.CoreV1().Secrets(s.opts.Namespace)
	if secret == nil {
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.opts.SecretName, Namespace: s.opts.Namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "tidb-backup-guard"}},
			Type: corev1.SecretTypeTLS,
		}
		encodeState(secret, st)
		_, err := secrets.Create(ctx, secret, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return errRetry
		}
		return err
	}
	secret = secret.DeepCopy()
	encodeState(secret, st)
	_, err := secrets.Update(ctx, secret, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return errRetry
	}
	return err
}

func encodeState(secret *corev1.Secret, st *State) {
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	secret.Data[SecretCACert] = st.CA.CertPEM
	secret.Data[SecretCAKey] = st.CA.KeyPEM
	secret.Data[CertFile] = st.Serving.CertPEM
	secret.Data[KeyFile] = st.Serving.KeyPEM
	secret.Data[SecretBundle] = st.Bundle.PEM()
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[RotatedAtAnnotation] = st.RotatedAt.UTC().Format(time.RFC3339Nano)
}

// decodeState reads the Secret; nil for no Secret. A Secret that cannot be read is an
// error, and the caller replaces it.
func decodeState(secret *corev1.Secret) (*State, error) {
	if secret == nil {
		return nil, nil
	}
	ca, err := ParseKeyPair(secret.Data[SecretCACert], secret.Data[SecretCAKey])
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	st := &State{CA: ca}
	if serving, err := ParseKeyPair(secret.Data[CertFile], secret.Data[KeyFile]); err == nil {
		st.Serving = serving // a bad serving pair is simply issued again
	}
	if st.Bundle, err = ParseBundle(secret.Data[SecretBundle]); err != nil {
		st.Bundle = nil
	}
	if st.RotatedAt, err = time.Parse(time.RFC3339Nano, secret.Annotations[RotatedAtAnnotation]); err != nil {
		st.RotatedAt = ca.Cert.NotAfter // unknown: no overlap beyond the CA's own life
	}
	return st, nil
}
