// Package testenv locates, for tests, what they read in place rather than from
// the repository: the module root and the shared corpus of real checkpoint
// files written by other tools (../shared/realdata beside the repository).
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ModuleRoot is the directory holding go.mod, found upwards from the test's
// working directory.
func ModuleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Realdata is the shared corpus of real files (it holds expected.json, which
// names the damaged ones). The test is skipped when the corpus is absent.
func Realdata(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(ModuleRoot(tb), "..", "shared", "realdata")
	if _, err := os.Stat(filepath.Join(dir, "expected.json")); err != nil {
		tb.Skipf("real files not available: %v", err)
	}
	return dir
}

// Command finds a program a test runs (xmllint, pre-commit). Without it the
// test is skipped with a message naming the Debian package that provides it
// (scripts/install-test-deps.sh installs them), except in CI (CI=true), where
// a missing dependency fails the test instead of passing silently.
func Command(tb testing.TB, name, debianPackage string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " not found: install the Debian package " + debianPackage + " (scripts/install-test-deps.sh does)"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}
