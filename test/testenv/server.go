package testenv

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/assets"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testcerts"
)

// Server is a tidb-backup-guard App running in this process against an Env.
type Server struct {
	App     *app.App
	Options *app.Options
	// BaseURL is where the API server calls the webhooks.
	BaseURL string
	// CABundle is the CA the webhook configurations trust.
	CABundle []byte

	cancel context.CancelFunc
	done   chan error
}

// FreePort returns a loopback port that was free a moment ago.
var FreePort = assets.FreePort

// StartServer runs the same App that `tidb-backup-guard serve` runs, with a fresh serving
// certificate, registers the webhook configurations for it, and returns once the API
// server reaches the webhooks. edit may change the options first.
func (e *Env) StartServer(ctx context.Context, log logr.Logger, edit func(*app.Options)) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(e.Dir, "certs-"+strconv.Itoa(port))
	ca, err := testcerts.ServingCert(certDir, 24*time.Hour, "127.0.0.1", "localhost")
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	s, err := e.RunApp(ctx, log, func(o *app.Options) {
		o.WebhookHost, o.WebhookPort, o.CertDir = "127.0.0.1", port, certDir
		o.Components = []string{app.ComponentWebhook}
		if edit != nil {
			edit(o)
		}
	})
	if err != nil {
		return nil, err
	}
	s.BaseURL, s.CABundle = fmt.Sprintf("https://127.0.0.1:%d", port), ca
	if err := RegisterWebhooks(ctx, e.Client, s.BaseURL, ca); err != nil {
		_ = s.Stop()
		return nil, err
	}
	if err := e.WaitForWebhooks(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// StartSelfSigned runs the webhook in self-signed mode with its Secret in the "default"
// namespace. With register, the webhook configurations are first registered pointing at
// it without a caBundle, as the chart installs them: the server must inject its CA
// before the API server can call it. edit may change the options (Secret name,
// lifetimes) after the test defaults: short settle and resync times.
func (e *Env) StartSelfSigned(ctx context.Context, log logr.Logger, register bool, edit func(*app.Options)) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	if register {
		if err := RegisterWebhooks(ctx, e.Client, base, nil); err != nil {
			return nil, err
		}
	}
	s, err := e.RunApp(ctx, log, func(o *app.Options) {
		o.WebhookHost, o.WebhookPort = "127.0.0.1", port
		o.Components = []string{app.ComponentWebhook}
		o.CertMode, o.CertNamespace = app.CertModeSelfSigned, "default"
		o.CertDNSNames = []string{"127.0.0.1", "localhost"}
		o.MutatingConfigName, o.ValidatingConfigName = MutatingConfigName, ValidatingConfigName
		o.CertSettle, o.CertResync = 500*time.Millisecond, time.Second
		if edit != nil {
			edit(o)
		}
	})
	if err != nil {
		return nil, err
	}
	s.BaseURL = base
	if register {
		if err := e.WaitForWebhooks(ctx); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// StartReconciler runs the App with only the reconciler component, against this Env.
func (e *Env) StartReconciler(ctx context.Context, log logr.Logger, edit func(*app.Options)) (*Server, error) {
	return e.RunApp(ctx, log, func(o *app.Options) {
		o.Components = []string{app.ComponentReconciler}
		if edit != nil {
			edit(o)
		}
	})
}

// RunApp runs an App whose options edit sets (metrics and probes off, the reconciler
// talking to this Env unless a hook says otherwise) and returns once it is ready.
// Webhooks are not registered.
func (e *Env) RunApp(ctx context.Context, log logr.Logger, edit func(*app.Options), hooks ...app.Hook) (*Server, error) {
	opts := app.NewOptions()
	opts.MetricsBindAddress, opts.HealthProbeBindAddress = "0", "0"
	edit(opts)
	a, err := app.New(opts, log, append([]app.Hook{app.WithRestConfig(e.Config), app.WithSeveralInProcess()}, hooks...)...)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{App: a, Options: opts, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.Start(runCtx) }()
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	return wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		select {
		case err := <-s.done:
			return false, fmt.Errorf("server stopped while starting: %w", err)
		default:
		}
		return s.App.Ready() == nil, nil
	})
}

// Stop stops the server and waits for it.
func (s *Server) Stop() error {
	s.cancel()
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("server did not stop within 30s")
	}
}

// WaitForWebhooks returns once the API server calls both webhooks: a server-side dry-run
// create of a log Backup without a policy comes back defaulted, and one with a malformed
// policy is refused. The API server picks up new webhook configurations asynchronously,
// so the first calls may miss them.
func (e *Env) WaitForWebhooks(ctx context.Context) error {
	return e.waitForWebhooks(ctx, true)
}

// WaitForNoWebhooks returns once the API server calls neither webhook, after their
// configurations were deleted.
func (e *Env) WaitForNoWebhooks(ctx context.Context) error {
	return e.waitForWebhooks(ctx, false)
}

func (e *Env) waitForWebhooks(ctx context.Context, want bool) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		probe := func(policy map[string]any) (*unstructured.Unstructured, error) {
			p := Empty(BackupGVK)
			p.SetNamespace("default")
			p.SetName("webhook-probe")
			p.Object["spec"] = map[string]any{"backupMode": "log"}
			if policy != nil {
				p.Object["spec"].(map[string]any)["backoffRetryPolicy"] = policy
			}
			return p, e.Client.Create(ctx, p, client.DryRunAll)
		}
		// Only the mutating webhook adds a policy to a Backup sent without one.
		p, err := probe(nil)
		if err != nil {
			return false, nil //nolint:nilerr // not reachable yet: keep polling
		}
		v, _, _ := unstructured.NestedString(p.Object, "spec", "backoffRetryPolicy", "minRetryDuration")
		mutating := v != ""
		// Only the validating webhook refuses a duration that does not parse.
		_, err = probe(map[string]any{"minRetryDuration": "soon", "maxRetryTimes": int64(5), "retryTimeout": "30m"})
		// (The API server names the webhook that refused: `admission webhook "<name>" denied
		// the request`.)
		validating := err != nil && strings.Contains(err.Error(), `admission webhook "validate-backup.`)
		return mutating == want && validating == want, nil
	})
}
