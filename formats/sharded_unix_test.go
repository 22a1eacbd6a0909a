//go:build unix

package formats_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt-tool/ckpt/formats"
)

// Escaping shard names are refused without being opened: each points at a FIFO,
// and opening a FIFO for reading blocks until a writer comes, so any open would
// hang Open past the deadline.
func TestEscapingShardsAreNeverOpened(t *testing.T) {
	root := t.TempDir()
	fifo := filepath.Join(root, "trap.safetensors")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	dir := filepath.Join(root, "ckpt")
	os.MkdirAll(dir, 0o755)
	if err := os.Symlink(fifo, filepath.Join(dir, "link.safetensors")); err != nil {
		t.Fatal(err)
	}
	shardedSpec{
		shards: map[string][]string{"model-00001-of-00001.safetensors": {"a"}},
		weightMap: map[string]string{"a": "model-00001-of-00001.safetensors",
			"b": fifo, "c": "../trap.safetensors", "d": "link.safetensors"},
	}.write(t, dir)

	done := make(chan *formats.Checkpoint, 1)
	go func() {
		c, _ := formats.Open(dir)
		done <- c
	}()
	select {
	case c := <-done:
		n := 0
		for _, p := range c.AllProblems() {
			if p.Severity == formats.SevError && findProblem([]formats.Problem{p}, formats.ErrUnsafePath) != nil {
				n++
			}
		}
		if n != 3 {
			t.Errorf("%d unsafe-path errors, want 3: %v", n, c.AllProblems())
		}
	case <-time.After(10 * time.Second):
		// Release the blocked open so the process can finish, then fail.
		if w, err := os.OpenFile(fifo, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		t.Fatal("Open blocked: an escaping shard was opened")
	}
}

// A shard inside the directory that is a FIFO is a problem, not a hang.
func TestFIFOShardDoesNotHang(t *testing.T) {
	dir := t.TempDir()
	shardedSpec{shards: twoShards()}.write(t, dir)
	shard := filepath.Join(dir, "model-00002-of-00002.safetensors")
	os.Remove(shard)
	if err := unix.Mkfifo(shard, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan *formats.Checkpoint, 1)
	go func() {
		c, _ := formats.Open(dir)
		done <- c
	}()
	select {
	case c := <-done:
		if c == nil || findProblem(c.AllProblems(), formats.ErrMissingShard) == nil {
			t.Fatalf("no missing-shard problem: %+v", c)
		}
	case <-time.After(10 * time.Second):
		if w, err := os.OpenFile(shard, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		t.Fatal("Open blocked on a FIFO shard")
	}
	// And as a path of its own, Open refuses it without blocking.
	if _, err := formats.Open(shard); err == nil {
		t.Error("a FIFO opened as a checkpoint")
	}
	if _, err := formats.OpenSource(shard, formats.Pread); err == nil {
		t.Error("OpenSource accepted a FIFO")
	}
}
