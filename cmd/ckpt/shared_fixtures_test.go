package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/hostile"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// Fixtures that take seconds to write and that several tests read without
// changing them: each is written once per run of the package, on first use,
// into a directory TestMain removes when the tests end. A test that changes
// its fixture does not use these (or copies it first, as copySharedTree does).

// sharedRoot holds the shared fixtures; TestMain removes it.
var sharedRoot struct {
	mu  sync.Mutex
	dir string
}

// sharedDir is a fresh directory name under sharedRoot (created on first use).
func sharedDir(t *testing.T, name string) string {
	t.Helper()
	sharedRoot.mu.Lock()
	defer sharedRoot.mu.Unlock()
	if sharedRoot.dir == "" {
		d, err := os.MkdirTemp("", "ckpt-cmd-test-")
		if err != nil {
			t.Fatal(err)
		}
		sharedRoot.dir = d
	}
	d := filepath.Join(sharedRoot.dir, name)
	if err := os.RemoveAll(d); err != nil { // what an earlier, failed write left
		t.Fatal(err)
	}
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// removeSharedFixtures deletes every shared fixture (TestMain, after the tests).
func removeSharedFixtures() {
	sharedRoot.mu.Lock()
	defer sharedRoot.mu.Unlock()
	if sharedRoot.dir != "" {
		os.RemoveAll(sharedRoot.dir)
		sharedRoot.dir = ""
	}
}

// sharedFixture is one fixture, written by the first test that asks for it.
// When that write fails or skips the test, nothing is kept: the next test
// that asks writes it again (and fails or skips the same way on its own).
type sharedFixture[V any] struct {
	mu    sync.Mutex
	done  bool
	value V
}

func (f *sharedFixture[V]) get(t *testing.T, name string, write func(t *testing.T, dir string) V) V {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock() // also when write ends the test (t.Fatal, t.Skip)
	if !f.done {
		f.value = write(t, sharedDir(t, name))
		f.done = true
	}
	return f.value
}

var sharedHostile sharedFixture[[]hostile.Case]

// hostileCorpus is the hostile corpus (internal/hostile), generated once per
// package run and shared: callers must not write into it. TestProbeHostileCorpus,
// which writes a config.json beside each case, generates its own.
func hostileCorpus(t *testing.T) []hostile.Case {
	t.Helper()
	return sharedHostile.get(t, "hostile", func(t *testing.T, dir string) []hostile.Case {
		cases, err := hostile.Generate(dir)
		if err != nil {
			t.Fatal(err)
		}
		return cases
	})
}

var sharedTrainer sharedFixture[string]

// trainerCheckpoints is the directory of the Trainer checkpoints torch writes
// (testenv.WriteTrainerCheckpoints), written once per package run and shared:
// callers copy what they change (copyTree, copySharedTree).
func trainerCheckpoints(t *testing.T) string {
	t.Helper()
	return sharedTrainer.get(t, "trainer", func(t *testing.T, dir string) string {
		testenv.WriteTrainerCheckpoints(t, dir)
		return dir
	})
}

// copySharedTree copies the directory tree src (directories and regular
// files) to dst.
func copySharedTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
