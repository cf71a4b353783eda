// Package etcdtest runs a real etcd server (the binary hack/envtest-assets.sh builds) as a
// stand-in for PD's embedded etcd, with or without client-certificate TLS, and writes the
// keys BR writes for a log backup task.
package etcdtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/assets"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testcerts"
)

// Options choose how the server runs.
type Options struct {
	// TLS serves clients over TLS and requires a client certificate signed by CA.
	TLS bool
	// Host is the loopback address to serve on (default 127.0.0.1). With a host of its
	// own, etcd serves clients on PD's port 2379, as PD does: TiDB Operator dials
	// <cluster>-pd.<namespace>:2379, and the tests map that name to Host.
	Host string
}

// PDClientPort is PD's client port, which TiDB Operator dials.
const PDClientPort = 2379

// Etcd is a running etcd server.
type Etcd struct {
	// Endpoint is the client URL.
	Endpoint string
	// CA signed the server and client certificates (TLS only).
	CA *testcerts.CA
	// ClientCert and ClientKey are a client certificate the server accepts (TLS only).
	ClientCert, ClientKey []byte

	dir  string
	args []string
	cmd  *exec.Cmd
	done chan error
}

// Binary is the etcd binary of KUBEBUILDER_ASSETS.
func Binary() (string, error) {
	dir, err := assets.Dir("etcd")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "etcd"), nil
}

// Start runs etcd on free loopback ports and waits until it answers.
func Start(opts Options) (*Etcd, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tidb-backup-guard-etcd-")
	if err != nil {
		return nil, err
	}
	host, clientPort := "127.0.0.1", PDClientPort
	if opts.Host != "" {
		host = opts.Host
	} else if clientPort, err = assets.FreePort(); err != nil {
		return nil, err
	}
	// The peer port: on a story's own address (opts.Host, unique to it) the usual 2380;
	// on 127.0.0.1 a free one, picked again if another process took it before etcd bound
	// it (FreePort closes its listener; seen under make stress, 200 etcds starting at once).
	peerHost, peerPort := host, 2380
	if opts.Host == "" {
		peerHost = "127.0.0.1"
	}
	scheme := "http"
	e := &Etcd{dir: dir}
	if opts.TLS {
		scheme = "https"
		if e.CA, err = testcerts.NewCA(24 * time.Hour); err != nil {
			return nil, err
		}
		serverCert, serverKey, err := e.CA.Issue(x509.ExtKeyUsageServerAuth, 24*time.Hour, host, "localhost")
		if err != nil {
			return nil, err
		}
		if err := testcerts.WritePair(dir, "server", serverCert, serverKey); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "ca.crt"), e.CA.PEM, 0o600); err != nil {
			return nil, err
		}
		if e.ClientCert, e.ClientKey, err = e.CA.Issue(x509.ExtKeyUsageClientAuth, 24*time.Hour, "tidb-backup-guard"); err != nil {
			return nil, err
		}
	}
	e.Endpoint = fmt.Sprintf("%s://%s:%d", scheme, host, clientPort)
	for attempt := 1; ; attempt++ {
		if opts.Host == "" {
			if peerPort, err = assets.FreePort(); err != nil {
				return nil, err
			}
		}
		e.setArgs(opts, dir, "http://"+net.JoinHostPort(peerHost, strconv.Itoa(peerPort)))
		err := e.run(bin)
		if err == nil {
			return e, nil
		}
		if opts.Host != "" || attempt == 3 || !errors.Is(err, errExited) {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		_ = os.RemoveAll(filepath.Join(dir, "data"))
	}
}

// errExited: etcd exited before it answered (a port taken, for one).
var errExited = errors.New("etcd exited while starting")

func (e *Etcd) setArgs(opts Options, dir, peer string) {
	e.args = []string{
		"--name", "pd",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", e.Endpoint,
		"--advertise-client-urls", e.Endpoint,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "pd=" + peer,
		"--log-level", "error",
		"--unsafe-no-fsync",
	}
	if opts.TLS {
		e.args = append(e.args,
			"--cert-file", filepath.Join(dir, "server.crt"),
			"--key-file", filepath.Join(dir, "server.key"),
			"--trusted-ca-file", filepath.Join(dir, "ca.crt"),
			"--client-cert-auth")
	}
}

func (e *Etcd) run(bin string) error {
	e.cmd = exec.Command(bin, e.args...)
	e.cmd.Stdout, e.cmd.Stderr = os.Stderr, os.Stderr
	// Dies with the test process: an etcd left behind holds go test's output open, and go
	// test then waits for it forever (seen when a story panicked under make stress).
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	e.done = make(chan error, 1)
	go func() { e.done <- e.cmd.Wait() }()
	cli, err := e.Client()
	if err != nil {
		_ = e.Stop()
		return err
	}
	defer func() { _ = cli.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-e.done:
			return fmt.Errorf("%w: %v (last error: %v)", errExited, werr, err)
		default:
		}
		if time.Now().After(deadline) {
			_ = e.Stop()
			return fmt.Errorf("etcd did not answer within 30s: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TLSConfig is a client TLS configuration the server accepts (nil without TLS).
func (e *Etcd) TLSConfig() (*tls.Config, error) {
	if e.CA == nil {
		return nil, nil
	}
	pair, err := tls.X509KeyPair(e.ClientCert, e.ClientKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CA.PEM)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// Client connects to the server as an administrator would (writing BR's keys).
func (e *Etcd) Client() (*clientv3.Client, error) {
	tlsConfig, err := e.TLSConfig()
	if err != nil {
		return nil, err
	}
	return clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, TLS: tlsConfig, Logger: zap.NewNop()})
}

// Stop stops the server, keeping its data for Restart.
func (e *Etcd) Stop() error {
	if e.cmd == nil || e.cmd.Process == nil {
		return nil
	}
	_ = e.cmd.Process.Kill()
	<-e.done
	e.cmd = nil
	return nil
}

// Restart starts the server again on the same ports and data.
func (e *Etcd) Restart() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	return e.run(bin)
}

// Close stops the server and removes its data.
func (e *Etcd) Close() error {
	err := e.Stop()
	return errors.Join(err, os.RemoveAll(e.dir))
}

// StartT starts a server for the rest of a test, with an administrator's client (to
// write BR's keys); both close when the test ends. Failing to start fails the test.
//
// Under go test -short without KUBEBUILDER_ASSETS (make unit), the test is skipped: it
// needs the etcd binary that make test builds.
func StartT(t testing.TB, opts Options) (*Etcd, *clientv3.Client) {
	t.Helper()
	if testing.Short() && os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("needs etcd from KUBEBUILDER_ASSETS: make test runs it")
	}
	e, err := Start(opts)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	cli, err := e.Client()
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return e, cli
}
