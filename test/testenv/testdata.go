package testenv

import _ "embed"

// LogBackupYAML is a log Backup named pitr without a retry policy, as a user writes one
// (testdata/log-backup.yaml): make demo applies it, and the webhook stories create it.
//
//go:embed testdata/log-backup.yaml
var LogBackupYAML string
