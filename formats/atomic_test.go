package formats_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestAtomicCommit(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "model.safetensors")
	a, err := formats.CreateAtomic(dest, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("weights")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("dest visible before Commit: %v", err)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "weights" {
		t.Errorf("dest holds %q", b)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "model.safetensors" {
		t.Errorf("directory holds %v, want only the dest", names)
	}
	if st, _ := os.Stat(dest); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if err := a.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
	a.Abort() // after Commit: a no-op
	if _, err := os.Stat(dest); err != nil {
		t.Errorf("Abort after Commit removed the dest: %v", err)
	}
}

func TestAtomicAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "out.safetensors")
	a, err := formats.CreateAtomic(dest, false)
	if err != nil {
		t.Fatal(err)
	}
	a.Write(make([]byte, 1000))
	a.Abort()
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("directory holds %v after Abort", names)
	}
	if err := a.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

func TestAtomicRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	dest := writeFile(t, dir, "evidence.safetensors", []byte("original"))
	if _, err := formats.CreateAtomic(dest, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("existing dest: %v", err)
	}
	// A dangling symlink is refused too (it would be followed or replaced).
	link := filepath.Join(dir, "link")
	os.Symlink(filepath.Join(dir, "nowhere"), link)
	if _, err := formats.CreateAtomic(link, false); !errors.Is(err, fs.ErrExist) {
		t.Errorf("dangling symlink dest: %v", err)
	}
	// A dest that appears while the output is written is not clobbered.
	late := filepath.Join(dir, "late.safetensors")
	a, err := formats.CreateAtomic(late, false)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("new"))
	os.WriteFile(late, []byte("someone else's"), 0o644)
	if err := a.Commit(); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Commit over a dest that appeared: %v", err)
	}
	if b, _ := os.ReadFile(late); string(b) != "someone else's" {
		t.Errorf("dest clobbered: %q", b)
	}
	// With overwrite, the dest is replaced.
	a, err = formats.CreateAtomic(dest, true)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("replaced"))
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "replaced" {
		t.Errorf("dest holds %q", b)
	}
	want := map[string]bool{"evidence.safetensors": true, "link": true, "late.safetensors": true}
	for _, n := range dirNames(t, dir) {
		if !want[n] {
			t.Errorf("left behind: %s", n)
		}
	}
}

func TestAtomicMissingDirectory(t *testing.T) {
	if _, err := formats.CreateAtomic(filepath.Join(t.TempDir(), "no", "such", "x"), false); err == nil {
		t.Error("created in a missing directory")
	}
	if err := formats.SyncDir(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("SyncDir of a missing directory succeeded")
	}
}
