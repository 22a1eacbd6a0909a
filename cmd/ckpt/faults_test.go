package main

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// failingSource is a byte source whose reads fail with EIO from a given offset
// on, as a dying disk or a flaky network file system does.
type failingSource struct {
	formats.Source
	from int64
}

func (f failingSource) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > f.from {
		return 0, &os.PathError{Op: "read", Path: f.Path(), Err: syscall.EIO}
	}
	return f.Source.ReadAt(b, off)
}

// injectEIO makes every read of files whose name contains match fail with EIO
// past the first 4 kB (the header stays readable), for the rest of the test.
func injectEIO(t *testing.T, match string) {
	restore := formats.SetSourceOpener(func(path string, mode formats.SourceMode) (formats.Source, error) {
		src, err := formats.DefaultOpenSource(path, formats.Pread)
		if err != nil || !strings.Contains(filepath.Base(path), match) {
			return src, err
		}
		return failingSource{Source: src, from: 4096}, nil
	})
	t.Cleanup(restore)
}

func TestReadErrorDuringScanIsAFindingAndTheRestIsScanned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ck")
	if err := synth.WriteCheckpoint(dir, synth.Options{Arch: synth.Tiny, Seed: 1, Shards: 3}); err != nil {
		t.Fatal(err)
	}
	injectEIO(t, "00002-of")
	for _, source := range []string{"pread", "mmap"} {
		r := cliRun(t, "scan", "--json", "--no-progress", "--source", source, dir)
		r.wantCode(t, 1)
		var out struct {
			Tensors []struct {
				Name    string
				File    string
				Scanned *bool `json:"scanned"`
			}
			Findings []struct{ Severity, Check, File, Message string }
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range out.Findings {
			if f.Check == "format" && strings.Contains(f.File, "model-00002-of-00003") && strings.Contains(f.Message, "input/output error") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no format finding naming the shard and the I/O error:\n%s", source, r.stdout)
		}
		scannedElsewhere := 0
		for _, ts := range out.Tensors {
			if !strings.Contains(ts.File, "00002-of") && ts.Scanned != nil && *ts.Scanned {
				scannedElsewhere++
			}
		}
		if scannedElsewhere == 0 {
			t.Errorf("%s: the readable shards were not scanned", source)
		}
	}
}

func TestReadErrorDuringDiffAndRepairIsReportedAndLeavesNothing(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for i, d := range []string{a, b} {
		if err := synth.WriteCheckpoint(d, synth.Options{Arch: synth.Tiny, Seed: int64(i + 1), Shards: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := synth.SetValues(filepath.Join(b, "model-00001-of-00002.safetensors"), "model.embed_tokens.weight", map[int]float64{3: math.Inf(1)}); err != nil {
		t.Fatal(err)
	}
	injectEIO(t, "00002-of")

	d := cliRun(t, "diff", "--no-progress", a, b)
	if d.code == 0 {
		t.Fatalf("diff succeeded although reads fail:\n%s", d.stdout)
	}
	if !strings.Contains(d.stdout+d.stderr, "input/output error") || !strings.Contains(d.stdout+d.stderr, "model-00002-of-00002") {
		t.Errorf("diff does not name the shard and the I/O error:\nstdout:\n%s\nstderr:\n%s", d.stdout, d.stderr)
	}

	out := filepath.Join(root, "out")
	r := cliRun(t, "repair", "--no-progress", b, "--from", a, "-o", out)
	if r.code == 0 {
		t.Fatalf("repair succeeded although reads fail:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout+r.stderr, "input/output error") {
		t.Errorf("repair does not report the I/O error:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.Name() != "a" && e.Name() != "b" {
			t.Errorf("a failed repair left %s behind", e.Name())
		}
	}
}

// TestPermissionDenied runs the ckpt command as an unprivileged user (or as this
// user when it is not root) on a checkpoint it may not read: exit 2, naming the
// path and the reason.
func TestPermissionDenied(t *testing.T) {
	root := t.TempDir()
	// The unprivileged user must be able to reach the checkpoint (TempDir and
	// its parent are private to this user).
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(root, "ck")
	if err := synth.WriteCheckpoint(dir, synth.Options{Arch: synth.Tiny, Seed: 1, Shards: 2}); err != nil {
		t.Fatal(err)
	}
	// Everything readable but one shard.
	if err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if fi.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(dir, "model-00002-of-00002.safetensors")
	if err := os.Chmod(shard, 0); err != nil {
		t.Fatal(err)
	}
	// The ckpt TestMain puts on PATH (this test binary, running main when
	// named ckpt), copied where the unprivileged user may run it.
	onPath, err := exec.LookPath("ckpt")
	if err != nil {
		t.Fatalf("ckpt not on PATH: %v", err)
	}
	exe, err := os.ReadFile(onPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "ckpt")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	var prefix []string
	if os.Geteuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("running as root without setpriv: cannot drop privileges")
		}
		prefix = []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}
	}
	for _, cmd := range [][]string{{"inspect", dir}, {"scan", "--no-progress", dir}, {"diff", "--no-progress", dir, dir}} {
		args := append(append(append([]string{}, prefix...), bin), cmd...)
		c := exec.Command(args[0], args[1:]...)
		var stderr strings.Builder
		c.Stderr = &stderr
		err := c.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: want exit 2, got %v\nstderr: %s", cmd, err, stderr.String())
			continue
		}
		if !strings.Contains(stderr.String(), "permission denied") || !strings.Contains(stderr.String(), "model-00002-of-00002.safetensors") {
			t.Errorf("%v: stderr does not name the file and the reason: %q", cmd, stderr.String())
		}
	}
}
