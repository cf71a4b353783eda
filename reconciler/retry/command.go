package retry

import "fmt"

// Log subcommands, as TiDB Operator names them (and its Jobs: backup-<name>-<command>).
const (
	CmdStart    = "log-start"
	CmdStop     = "log-stop"
	CmdPause    = "log-pause"
	CmdResume   = "log-resume"
	CmdTruncate = "log-truncate"
)

// Phases of a Backup and of a command entry.
const (
	PhaseScheduled   = "Scheduled"
	PhasePrepare     = "Prepare"
	PhaseRunning     = "Running"
	PhaseComplete    = "Complete"
	PhaseFailed      = "Failed"
	PhaseRetryFailed = "RetryFailed"
	PhaseInvalid     = "Invalid"
	PhasePaused      = "Paused"
	PhaseStopped     = "Stopped"
)

// currentCommand derives the command TiDB Operator works on, exactly as TiDB Operator
// does (see the facts document): from spec.logSubcommand, spec.logStop and status.phase,
// then log-truncate if that command is done and a new truncation is requested. "" means
// unknown.
func CurrentCommand(b *BackupView) string {
	cmd, _ := DeriveCommand(b)
	return cmd
}

// deriveCommand is currentCommand with the reason, for explain: one derivation serves
// both, so the tool cannot describe a rule the reconciler does not follow.
func DeriveCommand(b *BackupView) (cmd, why string) {
	switch b.LogSubcommand {
	case "":
		switch {
		case b.LogStop || b.Phase == PhaseStopped:
			cmd, why = CmdStop, "spec.logSubcommand is unset and spec.logStop is true or status.phase is Stopped"
		case b.Phase == PhasePaused:
			cmd, why = CmdResume, "spec.logSubcommand is unset and status.phase is Paused"
		default:
			cmd, why = CmdStart, "spec.logSubcommand is unset, spec.logStop is false and status.phase is not Paused"
		}
	case CmdStart:
		cmd, why = CmdStart, "spec.logSubcommand is log-start"
		if b.Phase == PhasePaused {
			cmd, why = CmdResume, "spec.logSubcommand is log-start and status.phase is Paused"
		}
	case CmdStop, CmdPause:
		cmd, why = b.LogSubcommand, "spec.logSubcommand is "+b.LogSubcommand
	default:
		return "", fmt.Sprintf("spec.logSubcommand %q is not a command TiDB Operator knows", b.LogSubcommand)
	}
	if commandDone(b, cmd) && b.LogTruncateUntil != "" && b.LogTruncateUntil != b.LogSuccessTruncateUntil {
		return CmdTruncate, fmt.Sprintf("%s is done (%s) and spec.logTruncateUntil differs from status.logSuccessTruncateUntil", cmd, why)
	}
	return cmd, why
}

// commandDone reports whether a command's effect is visible in status, TiDB Operator's
// own test for "already done".
func commandDone(b *BackupView, cmd string) bool {
	switch cmd {
	case CmdStart:
		return b.CommitTs != ""
	case CmdStop:
		return b.Phase == PhaseStopped
	case CmdPause:
		return b.Phase == PhasePaused
	case CmdResume:
		return b.Phase == PhaseRunning
	case CmdTruncate:
		return b.LogTruncateUntil != "" && b.LogTruncateUntil == b.LogSuccessTruncateUntil
	}
	return false
}

// commandSucceeded reports whether a command's latest run succeeded: its entry says
// Complete, or its effect is visible in status while nothing says the run failed (the
// entry is neither Failed nor RetryFailed, and job, the command's Job if known, did not
// fail under a running entry). status.commitTs alone is not success: a log-start can
// fail, or be marked failed, after it was set, and reading that as success would close
// the episode it just opened (a write loop, seen before the come-to-rest property was tested).
func commandSucceeded(b *BackupView, cmd string, job *JobView) bool {
	e := b.Entries[cmd]
	if e.Phase == PhaseComplete {
		return true
	}
	if e.Phase == PhaseFailed || e.Phase == PhaseRetryFailed {
		return false
	}
	return commandDone(b, cmd) && detectFailure(b, cmd, job) == nil
}

// JobName is the name of the Job TiDB Operator runs a log command in.
func JobName(backup, cmd string) string { return "backup-" + backup + "-" + cmd }

// activePhase reports an entry phase in which a command is (supposedly) running.
func activePhase(phase string) bool {
	return phase == PhaseScheduled || phase == PhasePrepare || phase == PhaseRunning
}

// RunningLog reports a running log backup: log-start done, and the command TiDB Operator
// works on is log-start or log-resume. Its task is watched (pause.go, lag).
func RunningLog(b *BackupView) bool {
	if b.Mode != "log" || b.Deleting || b.CommitTs == "" {
		return false
	}
	cmd := CurrentCommand(b)
	return cmd == CmdStart || cmd == CmdResume
}
