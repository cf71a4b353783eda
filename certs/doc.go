// Package certs provides the webhook server's serving certificate.
//
// A Source hands the TLS server a GetCertificate function, so a renewed certificate is
// served on the next handshake without a restart, and Check tells readiness whether the
// certificate in use is valid at a given time. The rest of the program does not care
// where a certificate comes from.
//
// Sources: FileSource reads tls.crt and tls.key from a directory (mounted from a Secret,
// for example one that cert-manager fills) and reloads them when they change.
package certs
