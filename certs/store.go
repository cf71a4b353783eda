package certs

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Keys of the self-signed Secret. tls.crt and tls.key make it a kubernetes.io/tls Secret.
const (
	SecretCACert        = "ca.crt"
	SecretCAKey         = "ca.key"
	SecretBundle        = "ca-bundle.crt"
	RotatedAtAnnotation = "tidb-backup-guard.io/ca-rotated-at"
)

// secretStore keeps the self-signed State in one Secret, the truth every replica shares.
type secretStore struct {
	client          kubernetes.Interface
	namespace, name string
}

// get returns the Secret (nil if there is none) and the State it holds. A Secret that
// cannot be read returns an error beside the Secret, and the caller replaces it.
func (s *secretStore) get(ctx context.Context) (*corev1.Secret, *State, error) {
	secret, err := s.client.CoreV1().Secrets(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("get secret: %w", err)
	}
	st, err := decodeState(secret)
	return secret, st, err
}

// write creates or updates the Secret with state, guarded by its resourceVersion.
func (s *secretStore) write(ctx context.Context, secret *corev1.Secret, st *State) error {
	secrets := s.client.CoreV1().Secrets(s.namespace)
	if secret == nil {
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace,
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
