package certs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
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
	opts     SelfSignedOptions
	store    *secretStore
	injector *caInjector
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
	return &SelfSignedSource{
		holder:       holder{metrics: opts.Metrics},
		opts:         opts,
		store:        &secretStore{client: opts.Client, namespace: opts.Namespace, name: opts.SecretName},
		injector:     &caInjector{client: opts.Client, mutating: opts.MutatingConfig, validating: opts.ValidatingConfig, log: opts.Log},
		trustedSince: map[string]time.Time{},
	}, nil
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
	trusted, hooks, err := s.injector.trusted(ctx)
	if err != nil {
		return 0, err
	}
	secret, cur, err := s.store.get(ctx)
	if err != nil && secret == nil {
		return 0, err
	}
	if err != nil {
		s.opts.Log.Info("The certificate Secret cannot be read; replacing it", "secret", s.opts.SecretName, "error", err.Error())
	}
	state, reason, err := Plan(cur, trusted, s.opts.Config, now)
	if err != nil {
		return 0, err
	}
	if reason != "" {
		if err := s.store.write(ctx, secret, state); err != nil {
			if errors.Is(err, errRetry) {
				return 0, nil
			}
			return 0, err
		}
		s.opts.Log.Info("Updated the certificate Secret", "secret", s.opts.SecretName, "change", reason,
			"caNotAfter", state.CA.Cert.NotAfter, "servingNotAfter", state.Serving.Cert.NotAfter, "bundle", len(state.Bundle))
	}
	injected := true
	if err := s.injector.inject(ctx, state.Bundle); err != nil {
		injected = false
		if !errors.Is(err, errRetry) {
			s.opts.Log.Info("Injecting the CA bundle failed", "error", err.Error())
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
