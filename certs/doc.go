// Package certs provides the webhook server's serving certificate.
//
// A Source hands the TLS server a GetCertificate function, so a renewed certificate is
// served on the next handshake without a restart, and Check tells readiness whether the
// certificate in use is valid at a given time. The rest of the program does not care
// where a certificate comes from.
//
// Sources:
//   - FileSource reads tls.crt and tls.key from a directory (mounted from a Secret, for
//     example one that cert-manager fills): controller-runtime's certwatcher.
//   - SelfSignedSource keeps a CA and a serving certificate in a Secret shared by every
//     replica, injects the CA bundle into the two named webhook configurations, and
//     rotates ahead of expiry without the API server ever meeting an unknown authority
//     (see its doc comment for the rule).
//
// The self-signed parts: store.go keeps the State in the Secret (writes guarded by its
// resourceVersion); inject.go owns caBundle, and only caBundle, of the webhook
// configurations by server-side apply; rotation.go decides what the Secret should hold
// (Plan, a pure function of the current state, the trusted bundle and an explicit time);
// pki.go builds certificates with cert-manager's PKI helpers from cert-manager
// Certificate specs; bundle.go merges and prunes CA bundles.
package certs
