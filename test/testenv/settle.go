package testenv

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SettleHold is how long every Backup of a story must stay unchanged for the story to
// count as ended: longer than any pause between the writes of a working retry, and far
// longer than the gap between two writes of a loop.
const SettleHold = 3 * time.Second

// Settle waits until no Backup in namespace has changed (by resourceVersion) for hold,
// and returns them by name. A controller that keeps writing never settles: after
// timeout, Settle fails and says which Backups kept changing and how often. An outcome
// check alone cannot see a write loop; this can.
func (e *Env) Settle(ctx context.Context, namespace string, hold, timeout time.Duration) (map[string]*unstructured.Unstructured, error) {
	type seen struct {
		rv      string
		since   time.Time
		changes int
	}
	state := map[string]*seen{}
	deadline := time.Now().Add(timeout)
	for {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(BackupGVK.GroupVersion().WithKind("BackupList"))
		if err := e.Client.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return nil, fmt.Errorf("list backups: %w", err)
		}
		now := time.Now()
		out := map[string]*unstructured.Unstructured{}
		quiet := true
		for i := range list.Items {
			b := &list.Items[i]
			out[b.GetName()] = b
			s, ok := state[b.GetName()]
			switch {
			case !ok:
				state[b.GetName()] = &seen{rv: b.GetResourceVersion(), since: now}
				quiet = false
			case s.rv != b.GetResourceVersion():
				s.rv, s.since = b.GetResourceVersion(), now
				s.changes++
				quiet = false
			case now.Sub(s.since) < hold:
				quiet = false
			}
		}
		if quiet {
			return out, nil
		}
		if now.After(deadline) {
			var busy []string
			for name, s := range state {
				if now.Sub(s.since) < hold {
					busy = append(busy, fmt.Sprintf("%s (changed %d times in %s)", name, s.changes, timeout))
				}
			}
			sort.Strings(busy)
			return out, fmt.Errorf("backups in %s never stayed unchanged for %s: %s", namespace, hold, strings.Join(busy, ", "))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
