// Package assets locates the binaries hack/envtest-assets.sh builds (KUBEBUILDER_ASSETS)
// and finds free loopback ports: what every test helper that starts a real process needs.
package assets

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Dir returns KUBEBUILDER_ASSETS, checked to hold bins: a missing binary is an error, never
// a reason to skip a test.
func Dir(bins ...string) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		return "", errors.New("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds the control plane binaries (hack/envtest-assets.sh)")
	}
	for _, bin := range bins {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("KUBEBUILDER_ASSETS=%s has no %s: %w", dir, bin, err)
		}
	}
	return dir, nil
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
