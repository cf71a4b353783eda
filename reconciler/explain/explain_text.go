package explain

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
)

// WriteText writes the explanation for a person: one section per line, times in UTC.
func (x *Explanation) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(key, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{key}, args...)...)
	}
	phase := x.Phase
	if phase == "" {
		phase = "none yet"
	}
	line("Backup:", "%s (mode %s, phase %s) at %s", x.Backup, x.Mode, phase, retry.RFC3339(x.At))
	if c := x.Command; c != nil {
		p := c.Phase
		if p == "" {
			p = "no entry yet"
		}
		if c.Name == "" {
			line("Command:", "unknown: %s", c.DerivedFrom)
		} else {
			line("Command:", "%s, %s (%s)", c.Name, p, c.DerivedFrom)
		}
	}
	for i, f := range x.Policy.Fields {
		key := ""
		if i == 0 {
			key = "Policy:"
		}
		line(key, "%s %s\t%s", f.Name, f.Value, f.Source)
	}
	for _, e := range x.Policy.Errors {
		line("", "malformed: %s", e)
	}
	if j := x.Job; j != nil {
		line("Job:", "%s, %s", j.Name, j.State)
	}
	if ep := x.Episode; ep != nil {
		state := "open"
		switch {
		case ep.GaveUp:
			state = "gave up"
		case ep.Pause:
			state = "open, a pause episode (resumes of a task paused by an error)"
		}
		records := "records"
		if len(ep.Timeline) == 1 {
			records = "record"
		}
		line("Episode:", "%s, %s, %d %s", ep.Command, state, len(ep.Timeline), records)
		for _, r := range ep.Timeline {
			line("", "#%d detected %s, scheduled %s, started %s: %s", r.RetryNum, retry.RFC3339(r.Detected), timeOrDash(r.Scheduled), timeOrDash(r.Started), r.Result)
			if r.Error != "" {
				line("", "   %s", oneLine(r.Error))
			}
		}
	} else {
		line("Episode:", "none open")
	}
	d := x.Decision
	decision := string(d.Action)
	if d.Reason != "" {
		decision += " (" + d.Reason + ")"
	}
	line("Decision:", "%s", decision)
	line("Next:", "%s", oneLine(x.Next))
	if l := x.Limit; l != nil {
		line("Limit:", "%s", l.Message)
	}
	if k := x.Kernel; k != nil {
		switch {
		case k.Error != "":
			line("Kernel:", "%s: could not read: %s", k.Endpoint, k.Error)
		default:
			line("Kernel:", "%s: %s", k.Endpoint, k.Summary)
			if k.Checkpoint != "" {
				line("", "checkpoint %s", k.Checkpoint)
			}
			if k.GCSafe != "" {
				line("", "GC safe point %s", k.GCSafe)
			}
		}
	}
	return tw.Flush()
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return retry.RFC3339(*t)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
