// Command tidb-backup-guard serves the retry-policy webhooks for TiDB Operator Backups
// and enforces that policy for log backups. See package app for the wiring.
package main

import (
	"os"
	"path/filepath"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
)

// main runs the command; installed (or linked) as kubectl-backup_guard it is the kubectl
// plugin "kubectl backup-guard".
func main() { os.Exit(app.MainAs(filepath.Base(os.Args[0]), os.Args[1:], os.Stdout, os.Stderr)) }
