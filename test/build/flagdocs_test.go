package build

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tidb-backup-guard/tidb-backup-guard/hack/flagdocs/gen"
)

// The command-line reference in docs/reference is the command tree's own (make docs): a
// flag added, renamed or reworded without regenerating the pages fails here.
func TestFlagReferenceIsCurrent(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, gen.Write(dir))
	want, err := filepath.Glob(filepath.Join(dir, "*.md"))
	require.NoError(t, err)
	have, err := filepath.Glob(filepath.Join(root, "docs", "reference", "*.md"))
	require.NoError(t, err)
	require.Len(t, have, len(want), "docs/reference has the pages of every command: run make docs")
	for _, w := range want {
		gen, err := os.ReadFile(w)
		require.NoError(t, err)
		committed, err := os.ReadFile(filepath.Join(root, "docs", "reference", filepath.Base(w)))
		require.NoError(t, err, "run make docs")
		assert.Equal(t, string(gen), string(committed), "%s is out of date: run make docs", filepath.Base(w))
	}
}
