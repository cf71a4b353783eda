// Package gen writes the command-line reference pages (hack/flagdocs).
package gen

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra/doc"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
)

// Write replaces the Markdown pages in dir with those of the command tree.
func Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	root := app.NewCommand("tidb-backup-guard")
	// Pages that do not change with the day they were made.
	root.DisableAutoGenTag = true
	return doc.GenMarkdownTree(root, dir)
}
