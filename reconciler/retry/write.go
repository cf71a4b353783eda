package retry

import (
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The fields of a Backup this package writes; everything else in the raw object is left
// exactly as read:
//
//	metadata.annotations[EpisodeAnnotation]
//	status.backoffRetryStatus
//	status.logSubCommandStatuses[<command>].phase and .conditions
//	status.phase and status.conditions (only when a log-start gives up, or is recovered
//	from a Failed phase)
//	status.commitTs (only when a log-start is recovered from the kernel state)
//	status.phase Paused (a resume handed to TiDB Operator, pause.go)

// apply changes u for a writing decision.
func Apply(u *unstructured.Unstructured, d Decision, now time.Time) error {
	switch d.Action {
	case ActRecordFailure:
		if err := appendRecord(u, d.Record); err != nil {
			return err
		}
		return setEpisode(u, &Episode{Command: d.Command, Pause: d.Pause})
	case ActGiveUp:
		if d.Record != nil {
			if err := appendRecord(u, d.Record); err != nil {
				return err
			}
		}
		if d.KeepEntry {
			return setEpisode(u, &Episode{Command: d.Command, GaveUp: true, Pause: d.Pause})
		}
		entry := d.Entry
		if entry == "" {
			entry = d.Command
		}
		if err := setEntry(u, entry, PhaseFailed, PhaseFailed, d.ConditionReason, d.Message, now); err != nil {
			return err
		}
		if entry == CmdStart {
			// A failed log-start fails the whole Backup, as the backup-manager does.
			if err := unstructured.SetNestedField(u.Object, PhaseFailed, "status", "phase"); err != nil {
				return err
			}
			if err := upsertCondition(u.Object, []string{"status", "conditions"}, d.Command, PhaseFailed, d.ConditionReason, d.Message, now); err != nil {
				return err
			}
		}
		return setEpisode(u, &Episode{Command: d.Command, GaveUp: true, Pause: d.Pause})
	case ActHandOff:
		if err := markRetryStarted(u, d, now); err != nil {
			return err
		}
		return handOff(u, d)
	case ActStartRetry:
		if err := markRetryStarted(u, d, now); err != nil {
			return err
		}
		if d.Pause {
			if err := setEpisode(u, &Episode{Command: d.Command, Pause: true}); err != nil {
				return err
			}
		}
		return setEntry(u, d.Command, PhaseRetryFailed, PhaseRetryFailed, ReasonRetryStarted, d.Message, now)
	case ActRecover, ActPutBack:
		// What the backup-manager writes when log-start succeeds: the entry Complete and
		// status.commitTs. It leaves the Backup's phase alone (Running by then), so only a
		// Failed phase, written when BR reported the failure, is set back to Running.
		// A put-back brings its own record, if any; a recovered retry completes the
		// record of its failure.
		switch {
		case d.Record != nil:
			if err := appendRecord(u, d.Record); err != nil {
				return err
			}
		case d.Action == ActRecover:
			if err := markRetryStarted(u, d, now); err != nil {
				return err
			}
		}
		if err := setEntry(u, d.Command, PhaseComplete, PhaseComplete, d.Reason, d.Message, now); err != nil {
			return err
		}
		if d.CommitTs != "" {
			if err := unstructured.SetNestedField(u.Object, d.CommitTs, "status", "commitTs"); err != nil {
				return err
			}
		}
		if p := str(u.Object, "status", "phase"); p == PhaseFailed || p == PhaseRetryFailed {
			if err := unstructured.SetNestedField(u.Object, PhaseRunning, "status", "phase"); err != nil {
				return err
			}
			if err := upsertCondition(u.Object, []string{"status", "conditions"}, d.Command, PhaseRunning, d.Reason, d.Message, now); err != nil {
				return err
			}
		}
		if d.Pause {
			return nil // a put-back within a pause episode keeps it open (afterResume)
		}
		return setEpisode(u, nil)
	case ActCloseEpisode:
		return setEpisode(u, nil)
	}
	return fmt.Errorf("action %s writes nothing", d.Action)
}

// handOff hands a resume to TiDB Operator: with status.phase Paused it derives log-resume
// as the current command and runs it (verified beside the real controller-manager). A
// log-resume entry left Complete, Failed or Invalid by an earlier resume would make TiDB
// Operator skip the Backup (its sync returns early for those phases of the current
// command), so it is marked RetryFailed, TiDB Operator's retryable phase.
func handOff(u *unstructured.Unstructured, d Decision) error {
	if err := unstructured.SetNestedField(u.Object, PhasePaused, "status", "phase"); err != nil {
		return err
	}
	phase := str(u.Object, "status", "logSubCommandStatuses", CmdResume, "phase")
	if phase == PhaseComplete || phase == PhaseFailed || phase == PhaseInvalid {
		if err := unstructured.SetNestedField(u.Object, PhaseRetryFailed, "status", "logSubCommandStatuses", CmdResume, "phase"); err != nil {
			return err
		}
	}
	return setEpisode(u, &Episode{Command: d.Command, Pause: true, HandOffs: d.HandOffs})
}

func RFC3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func recordMap(r *Record) map[string]any {
	m := map[string]any{
		"retryNum":       r.RetryNum,
		"detectFailedAt": RFC3339(r.DetectFailedAt),
		"retryReason":    r.RetryReason,
		"originalReason": r.OriginalReason,
	}
	if r.ExpectedRetryAt != nil {
		m["expectedRetryAt"] = RFC3339(*r.ExpectedRetryAt)
	}
	if r.RealRetryAt != nil {
		m["realRetryAt"] = RFC3339(*r.RealRetryAt)
	}
	return m
}

// appendRecord appends r to status.backoffRetryStatus and drops the oldest records of
// earlier episodes beyond keepOlderRecords.
func appendRecord(u *unstructured.Unstructured, r *Record) error {
	raw, _, err := unstructured.NestedSlice(u.Object, "status", "backoffRetryStatus")
	if err != nil {
		return fmt.Errorf("read status.backoffRetryStatus: %w", err)
	}
	raw = append(raw, recordMap(r))
	parsed := make([]Record, len(raw))
	for i, v := range raw {
		if m, ok := v.(map[string]any); ok {
			parsed[i] = readRecord(m)
		}
	}
	raw = raw[prune(parsed):]
	return unstructured.SetNestedSlice(u.Object, raw, "status", "backoffRetryStatus")
}

// markRetryStarted sets realRetryAt on the last record, with what the kernel probe found
// (d.RecordNote, d.KernelReason), keeping its other fields as read.
func markRetryStarted(u *unstructured.Unstructured, d Decision, now time.Time) error {
	raw, _, err := unstructured.NestedSlice(u.Object, "status", "backoffRetryStatus")
	if err != nil || len(raw) == 0 {
		return fmt.Errorf("no retry record to start: %v", err)
	}
	last, ok := raw[len(raw)-1].(map[string]any)
	if !ok {
		return fmt.Errorf("the last retry record is not an object")
	}
	last["realRetryAt"] = RFC3339(now)
	if d.RecordNote != "" {
		reason, _ := last["retryReason"].(string)
		if reason != "" {
			reason += "; "
		}
		last["retryReason"] = truncate(reason + d.RecordNote)
	}
	if d.KernelReason != "" {
		last["originalReason"] = d.KernelReason
	}
	return unstructured.SetNestedSlice(u.Object, raw, "status", "backoffRetryStatus")
}

// setEntry sets a command entry's phase and its condition of condType.
func setEntry(u *unstructured.Unstructured, cmd, phase, condType, reason, message string, now time.Time) error {
	entry, _, err := unstructured.NestedMap(u.Object, "status", "logSubCommandStatuses", cmd)
	if err != nil {
		return fmt.Errorf("read status.logSubCommandStatuses.%s: %w", cmd, err)
	}
	if entry == nil {
		entry = map[string]any{"command": cmd}
	}
	entry["phase"] = phase
	if err := upsertCondition(entry, []string{"conditions"}, cmd, condType, reason, message, now); err != nil {
		return err
	}
	return unstructured.SetNestedMap(u.Object, entry, "status", "logSubCommandStatuses", cmd)
}

// upsertCondition writes the condition of condType in the list at path, following TiDB
// Operator's convention of one condition per type: an existing one is updated in place
// (its other fields kept), otherwise one is appended.
func upsertCondition(obj map[string]any, path []string, cmd, condType, reason, message string, now time.Time) error {
	list, _, err := unstructured.NestedSlice(obj, path...)
	if err != nil {
		return fmt.Errorf("read %v: %w", path, err)
	}
	var cond map[string]any
	for _, v := range list {
		if m, ok := v.(map[string]any); ok && m["type"] == condType {
			cond = m
			break
		}
	}
	if cond == nil {
		cond = map[string]any{"type": condType}
		list = append(list, cond)
	}
	cond["command"] = cmd
	cond["status"] = "True"
	cond["reason"] = reason
	cond["message"] = message
	cond["lastTransitionTime"] = RFC3339(now)
	return unstructured.SetNestedSlice(obj, list, path...)
}

// setEpisode writes the episode annotation, or removes it for nil.
func setEpisode(u *unstructured.Unstructured, ep *Episode) error {
	ann := u.GetAnnotations()
	if ep == nil {
		if _, ok := ann[EpisodeAnnotation]; !ok {
			return nil
		}
		delete(ann, EpisodeAnnotation)
	} else {
		if ann == nil {
			ann = map[string]string{}
		}
		ann[EpisodeAnnotation] = ep.String()
	}
	u.SetAnnotations(ann)
	return nil
}

// recordPatch is the JSON merge patch of a RecordFailure decided on a cached Backup: the
// cached resourceVersion (a precondition: the API server rejects the patch if the Backup
// changed since), the episode annotation, and status.backoffRetryStatus, whole. A merge
// patch replaces lists whole; this list is this project's, and the precondition ensures
// the cached copy it extends is the current one.
func RecordPatch(cached *unstructured.Unstructured, d Decision, now time.Time) ([]byte, error) {
	if d.Action != ActRecordFailure {
		return nil, fmt.Errorf("only %s is written as a patch, not %s", ActRecordFailure, d.Action)
	}
	c := cached.DeepCopy()
	if err := Apply(c, d, now); err != nil {
		return nil, err
	}
	records, _, err := unstructured.NestedSlice(c.Object, "status", "backoffRetryStatus")
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"metadata": map[string]any{
			"resourceVersion": cached.GetResourceVersion(),
			"annotations":     map[string]any{EpisodeAnnotation: c.GetAnnotations()[EpisodeAnnotation]},
		},
		"status": map[string]any{"backoffRetryStatus": records},
	})
}
