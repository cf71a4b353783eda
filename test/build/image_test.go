package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// make image builds the image without a daemon (hack/image, with
// go-containerregistry). Its config and content must be what the Dockerfile describes:
// the same user, entrypoint and command, the binary from the same build line, stamped.
func TestImageAgreesWithTheDockerfile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "image.tar")
	cmd := exec.Command("go", "run", ".", "-root", root, "-out", out, "-tag", "tidb-backup-guard:test", "-version", "v9.9.9-image")
	cmd.Dir = filepath.Join(root, "hack", "image")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))

	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	files := readTar(t, f, false)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	require.NoError(t, json.Unmarshal(files["manifest.json"], &manifest))
	require.Len(t, manifest, 1)
	assert.Equal(t, []string{"tidb-backup-guard:test"}, manifest[0].RepoTags)
	var cfg struct {
		OS, Architecture string
		Config           struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Env        []string
		}
	}
	require.NoError(t, json.Unmarshal(files[manifest[0].Config], &cfg))
	d := dockerfile(t)
	user := regexp.MustCompile(`(?m)^USER (\S+)$`).FindStringSubmatch(d)
	require.NotNil(t, user)
	assert.Equal(t, user[1], cfg.Config.User)
	assert.Equal(t, "65532:65532", cfg.Config.User, "non-root, as the chart's securityContext expects")
	entry := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])$`).FindStringSubmatch(d)
	require.NotNil(t, entry)
	var want []string
	require.NoError(t, json.Unmarshal([]byte(entry[1]), &want))
	assert.Equal(t, want, cfg.Config.Entrypoint)
	cmdLine := regexp.MustCompile(`(?m)^CMD (\[.*\])$`).FindStringSubmatch(d)
	require.NotNil(t, cmdLine)
	var wantCmd []string
	require.NoError(t, json.Unmarshal([]byte(cmdLine[1]), &wantCmd))
	assert.Equal(t, wantCmd, cfg.Config.Cmd)
	assert.Equal(t, "linux", cfg.OS)

	require.Len(t, manifest[0].Layers, 1, "one layer, no base image")
	layer := readTar(t, bytes.NewReader(files[manifest[0].Layers[0]]), true)
	bin, ok := layer["tidb-backup-guard"]
	require.True(t, ok, "the binary at the path the Dockerfile copies it to; layer holds %v", keys(layer))
	binPath := filepath.Join(t.TempDir(), "tidb-backup-guard")
	require.NoError(t, os.WriteFile(binPath, bin, 0o755))
	version, err := exec.Command(binPath, "version").Output()
	require.NoError(t, err)
	assert.Contains(t, string(version), "v9.9.9-image", "built by the Dockerfile's line, VERSION stamped")
}

// readTar returns the regular files of a tar archive by name (gzipped when zipped).
func readTar(t *testing.T, r io.Reader, zipped bool) map[string][]byte {
	t.Helper()
	if zipped {
		gz, err := gzip.NewReader(r)
		require.NoError(t, err)
		r = gz
	}
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		out[h.Name] = b
	}
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
