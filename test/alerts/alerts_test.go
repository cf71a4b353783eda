package alerts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/assets"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// promtool is the rule tester's binary in the assets directory (hack/envtest-assets.sh
// names it after its version, so a bump builds anew).
func promtool(t *testing.T, dir string) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "promtool-*"))
	require.NoError(t, err)
	require.Len(t, matches, 1, "one promtool in %s (run make test, which builds it)", dir)
	return matches[0]
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), out.String())
	return out.String()
}

// The chart's alerts, rendered as a user would enable them, pass promtool's checks and
// the rule tests in testdata/rules_test.yaml.
func TestPrometheusRules(t *testing.T) {
	dir, err := assets.Dir("helm")
	require.NoError(t, err)
	chart := filepath.Join(testenv.RepoRoot(), "charts", "tidb-backup-guard")
	out := run(t, filepath.Join(dir, "helm"), "template", "guard", chart, "--kube-version", "1.37.0",
		"--set", "metrics.prometheusRule.enabled=true", "--show-only", "templates/prometheusrule.yaml")
	var rule struct {
		Kind string `json:"kind"`
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(out), &rule))
	require.Equal(t, "PrometheusRule", rule.Kind)
	require.NotEmpty(t, rule.Spec.Groups)

	work := t.TempDir()
	rules, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(work, "rules.yaml"), rules, 0o600))
	tests, err := os.ReadFile(filepath.Join("testdata", "rules_test.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(work, "rules_test.yaml"), tests, 0o600))

	assertEveryAlertTested(t, rule.Spec.Groups, tests)

	tool := promtool(t, dir)
	run(t, tool, "check", "rules", filepath.Join(work, "rules.yaml"))
	t.Log(run(t, tool, "test", "rules", filepath.Join(work, "rules_test.yaml")))
}

// assertEveryAlertTested fails unless each alert of the chart has a rule test where it fires
// and one where it does not: an alert added without tests is not done.
func assertEveryAlertTested(t *testing.T, groups []any, testFile []byte) {
	t.Helper()
	var file struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(testFile, &file))
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range file.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			name, _ := r.(map[string]any)["alert"].(string)
			if name == "" {
				continue
			}
			n++
			assert.True(t, fires[name], "no rule test where %s fires", name)
			assert.True(t, silent[name], "no rule test where %s stays silent", name)
		}
	}
	assert.Equal(t, 9, n, "the chart's alerts")
}
