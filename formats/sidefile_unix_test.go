//go:build unix

package formats

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadSideFileSpecial: a FIFO without a writer, a symlink to /dev/zero and
// a directory are refused at once as ErrSpecialFile, by ReadSideFile and by
// every reader of a side file and of a shard.
func TestReadSideFileSpecial(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.json")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	readers := map[string]func(string) error{
		"ReadSideFile":      func(p string) error { _, err := ReadSideFile(p, 1<<20); return err },
		"ReadIndex":         func(p string) error { _, err := ReadIndex(p); return err },
		"ReadConfig":        func(p string) error { _, err := ReadConfig(p); return err },
		"ReadTrainerState":  func(p string) error { _, err := ReadTrainerState(p); return err },
		"ReadFileHeader":    func(p string) error { _, err := ReadFileHeader(p, "x"); return err },
		"OpenSource(pread)": func(p string) error { _, err := OpenSource(p, Pread); return err },
		"OpenRegular":       func(p string) error { _, _, err := OpenRegular(p); return err },
	}
	for _, p := range []string{fifo, zero, dir} {
		for name, read := range readers {
			done := make(chan error, 1)
			go func() { done <- read(p) }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrSpecialFile) {
					t.Errorf("%s(%s): %v, want ErrSpecialFile", name, filepath.Base(p), err)
				} else if !strings.Contains(err.Error(), p) {
					t.Errorf("%s(%s): %q does not name the file", name, filepath.Base(p), err)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("%s(%s): blocked", name, filepath.Base(p))
			}
		}
	}
	if _, err := ReadSideFile(fifo, 1); err == nil || !strings.Contains(err.Error(), "a FIFO") {
		t.Errorf("FIFO refusal does not say it is a FIFO: %v", err)
	}
	if _, err := ReadSideFile(zero, 1); err == nil || !strings.Contains(err.Error(), "a character device") {
		t.Errorf("/dev/zero refusal does not say it is a device: %v", err)
	}
}

// TestReadSideFileCap: a side file over its cap is refused without being read,
// as a finding of the reader's own kind that still says it is too large.
func TestReadSideFileCap(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "big.json")
	if err := os.WriteFile(p, []byte(`{"weight_map":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, MaxIndexSize+1); err != nil { // sparse: nothing is written
		t.Fatal(err)
	}
	if _, err := ReadSideFile(p, MaxIndexSize); !errors.Is(err, ErrSideFileTooLarge) || !strings.Contains(err.Error(), "64 MiB") {
		t.Errorf("ReadSideFile: %v, want ErrSideFileTooLarge naming 64 MiB", err)
	}
	_, err := ReadIndex(p)
	if !errors.Is(err, ErrIndex) || !errors.Is(err, ErrSideFileTooLarge) {
		t.Errorf("ReadIndex: %v, want ErrIndex and ErrSideFileTooLarge", err)
	}
	if _, err := ReadConfig(p); !errors.Is(err, ErrConfig) || !errors.Is(err, ErrSideFileTooLarge) {
		t.Errorf("ReadConfig: %v, want ErrConfig and ErrSideFileTooLarge", err)
	}
	if data, err := ReadSideFile(p, MaxIndexSize+1); err != nil || len(data) != MaxIndexSize+1 {
		t.Errorf("at the cap: %d bytes, %v", len(data), err)
	}
	// In a checkpoint, the oversized index is a finding, not an error.
	if err := os.Rename(p, filepath.Join(dir, "model.safetensors.index.json")); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pr := range c.AllProblems() {
		found = found || errors.Is(pr.Err, ErrSideFileTooLarge)
	}
	if !found {
		t.Errorf("oversized index is not a finding: %v", c.AllProblems())
	}
}
