package integration

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stories are the parallel stories (t.Parallel, a namespace each) that make stress can
// run many copies of at once. TestStoriesAreStressable keeps the list whole.
var stories = map[string]func(*testing.T){
	"TestAPIServerOutageWhileWaiting":                      TestAPIServerOutageWhileWaiting,
	"TestCheckpointLagIsWatched":                           TestCheckpointLagIsWatched,
	"TestConcurrentWriter":                                 TestConcurrentWriter,
	"TestCredentialPauseIsNotResumed":                      TestCredentialPauseIsNotResumed,
	"TestExpiredCredentialsAreNotRetried":                  TestExpiredCredentialsAreNotRetried,
	"TestLagLimitPauseIsRecordedNotResumed":                TestLagLimitPauseIsRecordedNotResumed,
	"TestStateQueryFailedIsWaitedOn":                       TestStateQueryFailedIsWaitedOn,
	"TestErrorPausedLogBackupIsResumed":                    TestErrorPausedLogBackupIsResumed,
	"TestFailedLogStartWithCommitTsIsDecidedOnce":          TestFailedLogStartWithCommitTsIsDecidedOnce,
	"TestFalseTaskNotFoundIsPutBackOnce":                   TestFalseTaskNotFoundIsPutBackOnce,
	"TestGCPassingTheCheckpointGivesUpWithoutAResume":      TestGCPassingTheCheckpointGivesUpWithoutAResume,
	"TestHandOffOverwrittenByTiDBOperatorIsHandedOffAgain": TestHandOffOverwrittenByTiDBOperatorIsHandedOffAgain,
	"TestHandOffOverwrittenEveryTimeGivesUp":               TestHandOffOverwrittenEveryTimeGivesUp,
	"TestKernelProbeFallsBackWhenPDIsDown":                 TestKernelProbeFallsBackWhenPDIsDown,
	"TestKernelProbeNeverBlocksOtherBackups":               TestKernelProbeNeverBlocksOtherBackups,
	"TestKernelProbeWithClientTLS":                         TestKernelProbeWithClientTLS,
	"TestKernelStateDecidesTheRetry":                       TestKernelStateDecidesTheRetry,
	"TestLeaderElection":                                   TestLeaderElection,
	"TestLiveOldPodBlocksTheRetry":                         TestLiveOldPodBlocksTheRetry,
	"TestLogStartFailsTwiceThenSucceeds":                   TestLogStartFailsTwiceThenSucceeds,
	"TestManualPauseIsLeftAlone":                           TestManualPauseIsLeftAlone,
	"TestNamespacePolicyInTheReconciler":                   TestNamespacePolicyInTheReconciler,
	"TestOperatorPauseRecordsInterleaveWithOurs":           TestOperatorPauseRecordsInterleaveWithOurs,
	"TestPausedAgainAfterEachResumeExhaustsTheRetries":     TestPausedAgainAfterEachResumeExhaustsTheRetries,
	"TestPodDeathIsRetried":                                TestPodDeathIsRetried,
	"TestRealOperatorRerunsAfterTheHandOff":                TestRealOperatorRerunsAfterTheHandOff,
	"TestRealOperatorTrackerInterplay":                     TestRealOperatorTrackerInterplay,
	"TestReconcilerKilledMidRetry":                         TestReconcilerKilledMidRetry,
	"TestRestartMidBackoff":                                TestRestartMidBackoff,
	"TestRetriesExhausted":                                 TestRetriesExhausted,
	"TestRetryTimeout":                                     TestRetryTimeout,
	"TestScheduleWithMaxBackupsLosesItsLogBackup":          TestScheduleWithMaxBackupsLosesItsLogBackup,
	"TestShadowModeWritesNothing":                          TestShadowModeWritesNothing,
	"TestTwoReconcilersWithoutLeaderElection":              TestTwoReconcilersWithoutLeaderElection,
	"TestWriteGuardStopsAForcedLoop":                       TestWriteGuardStopsAForcedLoop,
}

// notStressable are parallel stories that cannot run beside copies of themselves.
var notStressable = map[string]string{
	"TestExplainAgreesWithTheServer": "runs the tools in this process (app.Main), whose flag parsing is not made for copies at once",
}

// TestStress runs copies of the stories whose names match STRESS_RUN, STRESS_COPIES of
// each, all at once (up to -parallel): make stress COPIES=n. Skipped without STRESS_RUN.
// Copies at once load TiDB Operator and the API server more than make test does, which is
// the point: a race that needs a busy machine shows here.
func TestStress(t *testing.T) {
	pattern := os.Getenv("STRESS_RUN")
	if pattern == "" {
		t.Skip("make stress COPIES=n RUN=<regexp> runs this")
	}
	re, err := regexp.Compile(pattern)
	require.NoError(t, err)
	copies, err := strconv.Atoi(os.Getenv("STRESS_COPIES"))
	require.NoError(t, err, "STRESS_COPIES")
	names := make([]string, 0, len(stories))
	for name := range stories {
		if re.MatchString(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	require.NotEmpty(t, names, "no story matches %q", pattern)
	for i := 1; i <= copies; i++ {
		for _, name := range names {
			t.Run(fmt.Sprintf("%s#%02d", name, i), stories[name])
		}
	}
}

// Every top-level story that calls t.Parallel is in stories or says why not.
func TestStoriesAreStressable(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, file := range files {
		f, err := parser.ParseFile(fset, file, nil, 0)
		require.NoError(t, err)
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Test") || fn.Body == nil || len(fn.Body.List) == 0 {
				continue
			}
			call, ok := fn.Body.List[0].(*ast.ExprStmt)
			if !ok {
				continue
			}
			if sel, ok := call.X.(*ast.CallExpr); ok {
				if s, ok := sel.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "Parallel" {
					_, listed := stories[fn.Name.Name]
					_, excused := notStressable[fn.Name.Name]
					assert.True(t, listed || excused, "%s (%s) runs in parallel: add it to stories in stress_test.go", fn.Name.Name, file)
				}
			}
		}
	}
}
