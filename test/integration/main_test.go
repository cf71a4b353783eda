package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// env is the control plane shared by the suites of this package.
var env *testenv.Env

// testLog is where servers started by the tests log: stderr with E2E_LOG=1, else a
// buffer of the test's own, whose last lines the test prints if it fails (or with
// E2E_TRACE=1): a story that failed once under make stress shows what the server decided.
func testLog(t *testing.T) logr.Logger {
	t.Helper()
	if os.Getenv("E2E_LOG") == "1" {
		return zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true))
	}
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("E2E_TRACE") == "1" {
			t.Logf("the log of the servers this test started (last %d lines):\n%s", logTail, buf.tail(logTail))
		}
	})
	return zap.New(zap.WriteTo(buf), zap.UseDevMode(true))
}

// logTail is how many lines of its servers' log a failed test prints.
const logTail = 150

// tail returns the last n lines written.
func (s *syncBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(s.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if env, err = testenv.Start(); err != nil {
		// No silent skip: a suite that cannot start its control plane fails.
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	defer func() {
		stopTiDBOperator()
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: stop control plane: %v\n", err)
		}
	}()
	return m.Run()
}
