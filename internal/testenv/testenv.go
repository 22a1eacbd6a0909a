// Package testenv locates, for tests, what they read in place rather than from
// the repository: the module root and the shared corpus of real checkpoint
// files written by other tools (../shared/realdata beside the repository).
package testenv

import (
	"os"
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

// RealdataTorch is the shared corpus of real PyTorch files (truth.json says
// what torch.load gives for each). The test is skipped when it is absent,
// and fails when CI=true.
func RealdataTorch(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(ModuleRoot(tb), "..", "shared", "realdata-torch")
	if _, err := os.Stat(filepath.Join(dir, "truth.json")); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("real PyTorch files not available: %v", err)
		}
		tb.Skipf("real PyTorch files not available (expected ../shared/realdata-torch beside the module): %v", err)
	}
	return dir
}
