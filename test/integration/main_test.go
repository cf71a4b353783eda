package integration

import (
	"fmt"
	"os"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// env is the control plane shared by the suites of this package.
var env *testenv.Env

// testLog is where servers started by the tests log: stderr with E2E_LOG=1, else nowhere.
func testLog() logr.Logger {
	if os.Getenv("E2E_LOG") == "1" {
		return zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true))
	}
	return logr.Discard()
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
