package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/assets"
)

// Env is a running control plane.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is a client for Config; it works with unstructured objects, so no field of
	// a Backup is lost on the way.
	Client client.Client
	// Kubeconfig is the path of a kubeconfig file for Config (for kubectl).
	Kubeconfig string
	// AssetsDir holds kube-apiserver, etcd, kubectl and helm.
	AssetsDir string
	// Dir is a scratch directory removed by Stop.
	Dir string

	env *envtest.Environment
}

// RepoRoot is the root of this repository, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// AssetsDir returns KUBEBUILDER_ASSETS, checked to hold the control plane, kubectl and
// TiDB Operator (its controller-manager and CRDs): what the demo needs too. The chart
// suites check for helm themselves.
func AssetsDir() (string, error) {
	return assets.Dir("kube-apiserver", "etcd", "kubectl", TiDBOperatorBinary, TiDBOperatorCRDs)
}

// Where hack/envtest-assets.sh puts TiDB Operator, inside KUBEBUILDER_ASSETS: its
// controller-manager, and the ten CRDs it releases (manifests/crd/v1 of its module).
const (
	TiDBOperatorBinary = "tidb-controller-manager"
	TiDBOperatorCRDs   = "tidb-operator-crds"
)

// Start runs kube-apiserver and etcd with TiDB Operator's released CRDs installed: the
// schema users have, pruning, defaults and all, not a model of it.
func Start() (*Env, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tidb-backup-guard-env-")
	if err != nil {
		return nil, err
	}
	e := &Env{AssetsDir: assets, Dir: dir}
	e.env = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(assets, TiDBOperatorCRDs)},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	if e.Config, err = e.env.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	if err := e.init(); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Env) init() error {
	var err error
	if e.Client, err = client.New(e.Config, client.Options{}); err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	user, err := e.env.ControlPlane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add admin user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("render kubeconfig: %w", err)
	}
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	return os.WriteFile(e.Kubeconfig, kubeconfig, 0o600)
}

// Stop stops the control plane and removes the scratch directory.
func (e *Env) Stop() error {
	err := e.env.Stop()
	return errors.Join(err, os.RemoveAll(e.Dir))
}
