package retry

import (
	"encoding/json"
	"time"
)

// Record is one entry of status.backoffRetryStatus, in TiDB Operator's format.
type Record struct {
	RetryNum        int64
	DetectFailedAt  time.Time
	ExpectedRetryAt *time.Time // nil: no retry will follow (the episode gave up here)
	RealRetryAt     *time.Time // nil: the retry has not started
	RetryReason     string
	OriginalReason  string
}

// pending reports a recorded failure whose retry has not started yet.
func (r Record) pending() bool { return r.ExpectedRetryAt != nil && r.RealRetryAt == nil }

// EpisodeAnnotation holds the open retry episode of a Backup, as JSON: the command whose
// failures it counts and whether it gave up. It is absent when no episode is open.
const EpisodeAnnotation = "tidb-backup-guard.io/retry-episode"

// Episode is the persisted state of a retry episode.
type Episode struct {
	Command string `json:"command"`
	GaveUp  bool   `json:"gaveUp,omitempty"`
	// Pause: the episode counts resumes of a running log backup whose task TiKV paused
	// on an error (Command is log-resume); see pause.go.
	Pause bool `json:"pause,omitempty"`
	// HandOffs counts the resume hand-offs of the current attempt that TiDB Operator
	// overwrote and that were written again (at most MaxHandOffs-1).
	HandOffs int `json:"handOffs,omitempty"`
}

func (e Episode) String() string {
	b, _ := json.Marshal(e) // a struct of a string and a bool always encodes
	return string(b)
}

// episodeRecords returns the records of the latest episode: the trailing run that starts
// at the last record numbered 1. Records are only appended, so the newest episode is
// always at the end.
func EpisodeRecords(records []Record) []Record {
	for i := len(records) - 1; i >= 0; i-- {
		if records[i].RetryNum <= 1 {
			return records[i:]
		}
	}
	return records
}

// keepOlderRecords is how many records of earlier episodes stay in status, for history;
// the list is bounded by the current episode (at most maxRetryTimes+1 records, itself
// bounded by the overflow rule) plus these.
const keepOlderRecords = 5

// prune drops the oldest records of earlier episodes beyond keepOlderRecords. It returns
// how many leading records to drop.
func prune(records []Record) int {
	current := len(EpisodeRecords(records))
	older := len(records) - current
	if older <= keepOlderRecords {
		return 0
	}
	return older - keepOlderRecords
}
