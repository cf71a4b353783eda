// Command tidb-backup-guard serves the retry-policy webhooks for TiDB Operator Backups
// and enforces that policy for log backups. See package app for the wiring.
package main

import (
	"os"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
)

func main() { os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr)) }
