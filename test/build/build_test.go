// Package build checks the Dockerfile on machines without a Docker engine: it runs the
// exact go build command of the Dockerfile's build stage and checks what the image would
// contain.
package build

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var root = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}()

func dockerfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	// Join continuation lines, as Docker does.
	return strings.ReplaceAll(string(b), "\\\n", " ")
}

// buildCommand is the RUN line of the build stage that runs go build.
func buildCommand(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(dockerfile(t), "\n") {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			return strings.TrimPrefix(line, "RUN ")
		}
	}
	t.Fatal("the Dockerfile has no RUN ... go build line")
	return ""
}

func TestDockerfileBuildsAStaticStampedBinary(t *testing.T) {
	cmdline := buildCommand(t)
	require.Contains(t, cmdline, "CGO_ENABLED=0")
	require.Contains(t, cmdline, "-trimpath")
	require.Contains(t, cmdline, "-tags grpcnotrace")
	out := t.TempDir()
	cmdline = strings.ReplaceAll(cmdline, "/out/", out+"/")
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION=v9.9.9-test")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	bin := filepath.Join(out, "tidb-backup-guard")

	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "dynamically linked: a distroless/static image cannot run it")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs)
	// grpcnotrace took effect: golang.org/x/net/trace (and with it the method bloat of
	// html/template) is not linked.
	syms, err := f.Symbols()
	require.NoError(t, err)
	for _, s := range syms {
		require.False(t, strings.HasPrefix(s.Name, "golang.org/x/net/trace."), "linked: %s", s.Name)
	}

	version, err := exec.Command(bin, "version").Output()
	require.NoError(t, err)
	assert.Contains(t, string(version), "v9.9.9-test", "the version is stamped through ldflags")
}

func TestDockerfileRunsAsNonRoot(t *testing.T) {
	d := dockerfile(t)
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(d, -1)
	require.GreaterOrEqual(t, len(froms), 2, "multi-stage")
	final := froms[len(froms)-1][1]
	assert.Contains(t, final, "distroless/static")
	assert.True(t, strings.HasSuffix(final, ":nonroot"), final)
	assert.Regexp(t, `(?m)^USER 65532:65532$`, d)
	// The binary is the entrypoint; serve is the default command, which a Deployment's
	// args replace (they start with serve: TestChartArgsParse runs them after it).
	assert.Regexp(t, `(?m)^ENTRYPOINT \["/tidb-backup-guard"\]$`, d)
	assert.Regexp(t, `(?m)^CMD \["serve"\]$`, d)

	// The build stage's Go matches go.mod's.
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(mod))[1]
	assert.Equal(t, "golang:"+goVersion, froms[0][1])

	// make build runs the same command.
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	assert.Contains(t, string(mk), "CGO_ENABLED=0 go build -trimpath -tags grpcnotrace")
}

// The benchmarks are not run by make test (timings belong to make bench), but they must
// keep building and their set-up checks must keep passing: a benchmark that no longer
// measures the intended case is caught here, not at the next make bench.
func TestBenchmarksBuildAndCheckTheirCases(t *testing.T) {
	for _, c := range []struct {
		dir  string
		args []string
	}{
		// The handler benchmarks, once each: benchHandler checks the answer first.
		{".", []string{"test", "-run", "^$", "-bench", ".", "-benchtime", "1x", "./webhook/"}},
		// The load generator, end-to-end and scale drivers: their own module.
		{filepath.Join("test", "bench"), []string{"vet", "./..."}},
	} {
		cmd := exec.Command("go", c.args...)
		cmd.Dir = filepath.Join(root, c.dir)
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s in %s:\n%s", strings.Join(c.args, " "), c.dir, b)
	}
}
