// Package app is the tidb-backup-guard command: options, flags, and the wiring that
// builds and runs the webhook server, the reconciler and the health and metrics
// endpoints. The end-to-end tests run the same App that `tidb-backup-guard serve` runs.
package app
