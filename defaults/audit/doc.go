// Package audit finds the policies that the webhooks would have changed or refused in
// Backups and BackupSchedules that exist already (created before the webhooks, or while
// they were off), by the rules of package defaults, and fixes what can be fixed: the log
// defaults, applied with server-side apply to the policy fields only. The audit command
// of the binary wires it.
package audit
