// Command image builds the tidb-backup-guard image as a tarball that `docker load`,
// `ctr images import` and `kind load image-archive` accept, on machines without a Docker
// engine. It reads the Dockerfile, so that the two cannot drift apart: it runs the build
// stage's RUN ... go build line (its /out/ redirected), and copies the final stage's USER,
// ENTRYPOINT and CMD into the image config. The image holds the binary, the CA bundle of the
// build machine (what the distroless base would add) and an empty /tmp, and no base image:
// a static binary needs none, and no registry is reachable here.
//
//	go run ./hack/image -out bin/tidb-backup-guard-image.tar -tag tidb-backup-guard:dev
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// caBundle is where Debian (and distroless) keep the CA certificates.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

func main() {
	root := flag.String("root", ".", "the repository root (where the Dockerfile is)")
	out := flag.String("out", "bin/tidb-backup-guard-image.tar", "the image tarball to write")
	tag := flag.String("tag", "tidb-backup-guard:dev", "the image's name in the tarball")
	version := flag.String("version", "dev", "VERSION, as the Dockerfile's build argument")
	bin := flag.String("bin", "", "instead of the Dockerfile's: an image of this one static binary (at /<its name>, its entrypoint, run as 65535), such as the end-to-end node's pause image")
	var files fileList
	flag.Var(&files, "add", "instead of the Dockerfile's: SRC:DST puts the file SRC at DST in the image (repeat it); the first is the entrypoint unless -entrypoint says otherwise. For the images that stand in for TiDB Operator's on the end-to-end node")
	entrypoint := flag.String("entrypoint", "", "with -add: the entrypoint's path")
	user := flag.String("user", "65535:65535", "with -add: the image's user")
	flag.Parse()
	var err error
	switch {
	case *bin != "":
		files = fileList{{src: *bin, dst: "/" + filepath.Base(*bin)}}
		fallthrough
	case len(files) > 0:
		if *entrypoint == "" {
			*entrypoint = files[0].dst
		}
		err = filesImage(files, stage{user: *user, entrypoint: []string{*entrypoint}}, *out, *tag)
	default:
		err = build(*root, *out, *tag, *version)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

// file is one file of an image made of files: its source here and its path in the image.
type file struct{ src, dst string }

// fileList is the repeated -add flag.
type fileList []file

func (l *fileList) String() string { return fmt.Sprint(*l) }

func (l *fileList) Set(v string) error {
	src, dst, ok := strings.Cut(v, ":")
	if !ok || !strings.HasPrefix(dst, "/") {
		return fmt.Errorf("%q: want SRC:/DST", v)
	}
	*l = append(*l, file{src: src, dst: dst})
	return nil
}

// stage is what the image takes from the Dockerfile.
type stage struct {
	buildLine  string   // the build stage's RUN ... go build command
	binary     string   // the binary's path in the image (the COPY --from=build target)
	user       string   // the final stage's USER
	entrypoint []string // the final stage's ENTRYPOINT (exec form)
	cmd        []string // the final stage's CMD (exec form), if any
}

func readDockerfile(path string) (stage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return stage{}, err
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ") // continuation lines, as Docker joins them
	var s stage
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build"):
			s.buildLine = strings.TrimPrefix(line, "RUN ")
		case strings.HasPrefix(line, "USER "):
			s.user = strings.TrimSpace(strings.TrimPrefix(line, "USER "))
		case strings.HasPrefix(line, "CMD "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "CMD ")), &s.cmd); err != nil {
				return stage{}, fmt.Errorf("CMD is not in exec form: %w", err)
			}
		case strings.HasPrefix(line, "ENTRYPOINT "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ENTRYPOINT ")), &s.entrypoint); err != nil {
				return stage{}, fmt.Errorf("ENTRYPOINT is not in exec form: %w", err)
			}
		case strings.HasPrefix(line, "COPY --from=build "):
			f := strings.Fields(line)
			s.binary = f[len(f)-1]
		}
	}
	if m := regexp.MustCompile(`-o (/out/\S+)`).FindStringSubmatch(s.buildLine); m == nil || s.user == "" || len(s.entrypoint) == 0 || s.binary == "" {
		return stage{}, errors.New("the Dockerfile lacks a RUN ... go build -o /out/..., a COPY --from=build, a USER or an ENTRYPOINT")
	}
	return s, nil
}

// filesImage writes an image of files (static binaries: no base image) as s describes it.
func filesImage(files fileList, s stage, out, tag string) error {
	content := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f.src)
		if err != nil {
			return err
		}
		content[f.dst] = b
	}
	return write(content, s, out, tag, "dev")
}

func build(root, out, tag, version string) error {
	s, err := readDockerfile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(s.buildLine, "/out/", tmp+"/"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), "VERSION="+version, "GOOS=linux")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the Dockerfile's build line: %w", err)
	}
	bin, err := os.ReadFile(filepath.Join(tmp, filepath.Base(s.binary)))
	if err != nil {
		return err
	}
	return write(map[string][]byte{s.binary: bin}, s, out, tag, version)
}

// write writes the image of files (path in the image: content) as s describes it.
func write(files map[string][]byte, s stage, out, tag, version string) error {
	layer, err := rootfs(files)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()} // reproducible
	cfg.Config.User = s.user
	cfg.Config.Entrypoint = s.entrypoint
	cfg.Config.Cmd = s.cmd
	cfg.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + caBundle}
	cfg.Config.Labels = map[string]string{"org.opencontainers.image.version": version}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "image: %s (%s) written to %s\n", tag, digest, out)
	return nil
}

// rootfs is the image's one layer: the files (executable) at their paths with their
// directories, the CA bundle, /tmp.
func rootfs(files map[string][]byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	add := func(h *tar.Header, body []byte) error {
		h.ModTime, h.Uid, h.Gid = epoch, 0, 0
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if ca, err := os.ReadFile(caBundle); err == nil {
		files = maps.Clone(files)
		files[caBundle] = ca
	} else {
		fmt.Fprintf(os.Stderr, "image: no CA bundle at %s (%v): the image has none\n", caBundle, err)
	}
	dirs := map[string]bool{"tmp/": true}
	for p := range files {
		for d := path.Dir(strings.TrimPrefix(p, "/")); d != "."; d = path.Dir(d) {
			dirs[d+"/"] = true
		}
	}
	// Directories first, parents before children, then the files: one order for one digest.
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode}, nil); err != nil {
			return nil, err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		mode := int64(0o755)
		if p == caBundle {
			mode = 0o644
		}
		body := files[p]
		if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: mode, Size: int64(len(body))}, body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
