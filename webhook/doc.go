// Package webhook serves the mutating and validating admission webhooks for TiDB
// Operator's Backup and BackupSchedule objects.
//
// It translates AdmissionReviews (admission.k8s.io/v1 only) into calls to the defaults
// package and back. It never decodes a whole object into a Go type: it reads the few
// fields it needs into small views and answers with JSON Patch operations that touch
// only the retry policy, so every field this project does not own reaches the API server
// exactly as the client sent it. It needs no Kubernetes client.
//
// The package has three parts: review.go (the HTTP envelope: limits, one decode of the
// review with JSON v2 straight into the views, replies as controller-runtime's
// admission.Response), backup.go and schedule.go (the admission decisions), and server.go
// (the TLS server).
package webhook
