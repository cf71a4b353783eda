package certs

import (
	"bytes"
	"context"
	"fmt"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	admissionregistrationv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	"k8s.io/client-go/kubernetes"
)

// InjectorFieldManager is the field manager that owns caBundle in the two webhook
// configurations in self-signed mode.
const InjectorFieldManager = "tidb-backup-guard-ca-injector"

// caInjector keeps the CA bundle of every webhook of two named configurations. The
// configurations belong to the chart: the injector owns only clientConfig.caBundle, by
// server-side apply (webhooks are a list keyed by name, and clientConfig is not atomic,
// so a field manager can own that one field of each webhook), and nothing else of them
// changes.
type caInjector struct {
	client               kubernetes.Interface
	mutating, validating string
	log                  logr.Logger
}

// trusted returns the CAs every webhook of both configurations trusts, and how many
// webhooks there are. Missing configurations count as none.
func (s *caInjector) trusted(ctx context.Context) (Bundle, int, error) {
	var bundles [][]byte
	ar := s.client.AdmissionregistrationV1()
	m, err := ar.MutatingWebhookConfigurations().Get(ctx, s.mutating, metav1.GetOptions{})
	switch {
	case err == nil:
		for _, w := range m.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
	case !apierrors.IsNotFound(err):
		return nil, 0, fmt.Errorf("get %s: %w", s.mutating, err)
	}
	v, err := ar.ValidatingWebhookConfigurations().Get(ctx, s.validating, metav1.GetOptions{})
	switch {
	case err == nil:
		for _, w := range v.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
	case !apierrors.IsNotFound(err):
		return nil, 0, fmt.Errorf("get %s: %w", s.validating, err)
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

// inject writes bundle into every webhook of both configurations; it returns errRetry
// when a configuration changed since it was read.
func (s *caInjector) inject(ctx context.Context, bundle Bundle) error {
	want := bundle.PEM()
	ar := s.client.AdmissionregistrationV1()
	apply := metav1.ApplyOptions{FieldManager: InjectorFieldManager, Force: true}
	cc := admissionregistrationv1ac.WebhookClientConfig().WithCABundle(want...)
	var err error
	if c, getErr := ar.MutatingWebhookConfigurations().Get(ctx, s.mutating, metav1.GetOptions{}); getErr != nil {
		err = client404(getErr)
	} else if !allEqual(len(c.Webhooks), func(i int) []byte { return c.Webhooks[i].ClientConfig.CABundle }, want) {
		// Every webhook is in the apply, not only those that differ: a field this
		// manager owned and leaves out of an apply is removed.
		ac := admissionregistrationv1ac.MutatingWebhookConfiguration(s.mutating).WithResourceVersion(c.ResourceVersion)
		for _, w := range c.Webhooks {
			ac.WithWebhooks(admissionregistrationv1ac.MutatingWebhook().WithName(w.Name).WithClientConfig(cc))
		}
		_, err = ar.MutatingWebhookConfigurations().Apply(ctx, ac, apply)
		s.applied(s.mutating, len(bundle), err)
	}
	if err != nil {
		return retryOn(err)
	}
	if c, getErr := ar.ValidatingWebhookConfigurations().Get(ctx, s.validating, metav1.GetOptions{}); getErr != nil {
		err = client404(getErr)
	} else if !allEqual(len(c.Webhooks), func(i int) []byte { return c.Webhooks[i].ClientConfig.CABundle }, want) {
		ac := admissionregistrationv1ac.ValidatingWebhookConfiguration(s.validating).WithResourceVersion(c.ResourceVersion)
		for _, w := range c.Webhooks {
			ac.WithWebhooks(admissionregistrationv1ac.ValidatingWebhook().WithName(w.Name).WithClientConfig(cc))
		}
		_, err = ar.ValidatingWebhookConfigurations().Apply(ctx, ac, apply)
		s.applied(s.validating, len(bundle), err)
	}
	return retryOn(err)
}

func allEqual(n int, bundle func(int) []byte, want []byte) bool {
	for i := range n {
		if !bytes.Equal(bundle(i), want) {
			return false
		}
	}
	return true
}

func (s *caInjector) applied(name string, certificates int, err error) {
	if err == nil {
		s.log.Info("Injected the CA bundle", "configuration", name, "certificates", certificates)
	}
}

// retryOn turns "changed since read" (the resourceVersion precondition) into errRetry.
func retryOn(err error) error {
	if apierrors.IsConflict(err) || apierrors.IsInvalid(err) || apierrors.IsNotFound(err) {
		return errRetry
	}
	return err
}

// client404 turns a missing configuration into "nothing to inject".
func client404(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
