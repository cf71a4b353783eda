package build

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// markdownLink is an inline link or image: [text](target) or ![alt](target).
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// anchors returns the anchors GitHub gives a Markdown file's headings: lowercase,
// punctuation other than '-' and '_' dropped, spaces turned into '-', and a repeated one
// numbered (-1, -2, ...).
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		heading := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(heading) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// The README and docs/ link to each other, to the code and to sections by anchor: every
// relative link must reach a file that exists and, with a #fragment, a heading there.
func TestDocsLinksResolve(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	files = append(files, filepath.Join(root, "README.md"))
	for _, file := range files {
		text, err := os.ReadFile(file)
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, file)
		for _, m := range markdownLink.FindAllStringSubmatch(string(text), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, fragment, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(dest); err != nil {
					assert.Failf(t, "broken link", "%s links to %s, which does not exist", rel, target)
					continue
				}
			}
			if fragment == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			destText, err := os.ReadFile(dest)
			require.NoError(t, err)
			assert.True(t, anchors(string(destText))[fragment], "%s links to %s: no heading there has that anchor", rel, target)
		}
	}
}

func TestAnchors(t *testing.T) {
	got := anchors("# Title\n## The hand-off, and why it converges\n```\n# not a heading\n```\n## `explain`: why?\n## Twice\n## Twice\n")
	assert.Equal(t, map[string]bool{"title": true, "the-hand-off-and-why-it-converges": true, "explain-why": true, "twice": true, "twice-1": true}, got)
}

// Every alert of the chart's PrometheusRule points its runbook_url at a section of
// docs/operations.md named after it.
func TestAlertRunbooksExist(t *testing.T) {
	rule, err := os.ReadFile(filepath.Join(root, "charts", "tidb-backup-guard", "templates", "prometheusrule.yaml"))
	require.NoError(t, err)
	ops, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	require.NoError(t, err)
	have := anchors(string(ops))
	alerts := regexp.MustCompile(`- alert: (\S+)`).FindAllStringSubmatch(string(rule), -1)
	urls := regexp.MustCompile(`runbook_url: "\{\{ \$r\.runbookBaseURL \}\}#(\S+)"`).FindAllStringSubmatch(string(rule), -1)
	require.NotEmpty(t, alerts)
	require.Len(t, urls, len(alerts), "one runbook_url per alert")
	for i, a := range alerts {
		assert.Equal(t, strings.ToLower(a[1]), urls[i][1], "alert %s", a[1])
		assert.True(t, have[urls[i][1]], "docs/operations.md has no section for %s", a[1])
	}
}
