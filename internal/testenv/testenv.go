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

// sharedCorpus is ../shared/NAME beside the repository when it holds marker;
// otherwise the test stops through Missing.
func sharedCorpus(tb testing.TB, name, marker, what string) string {
	tb.Helper()
	dir := filepath.Join(ModuleRoot(tb), "..", "shared", name)
	if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
		Missing(tb, what+" are not available ("+err.Error()+")",
			"put the shared corpus beside the repository as ../shared/"+name+" (its README and SOURCES.md list every file and where it comes from)")
	}
	return dir
}

// Realdata is the shared corpus of real files (it holds expected.json, which
// names the damaged ones). When the corpus is absent the test fails in CI and
// is skipped elsewhere (see Missing).
func Realdata(tb testing.TB) string {
	tb.Helper()
	return sharedCorpus(tb, "realdata", "expected.json", "the real files")
}

// InCI reports whether the tests run in continuous integration (CI=true, as
// GitHub Actions and most CI services set it), where every dependency of the
// tests must be present.
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Missing stops a test that lacks something it needs (what), saying how to
// get it (how): in CI it is a failure, elsewhere a skip.
func Missing(tb testing.TB, what, how string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("%s; CI=true, so this fails instead of skipping: %s", what, how)
		return
	}
	tb.Skipf("%s; to run this test, %s", what, how)
}

// Command finds a program a test runs (xmllint, pre-commit). Without it the
// test stops through Missing, naming the Debian package that provides it
// (scripts/install-test-deps.sh installs them).
func Command(tb testing.TB, name, debianPackage string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, name+" not found", "install the Debian package "+debianPackage+" (scripts/install-test-deps.sh does)")
	}
	return p
}

// RealdataGGUF is the shared corpus of real GGUF files (with truth.json).
// Without it the test stops through Missing.
func RealdataGGUF(tb testing.TB) string {
	tb.Helper()
	return sharedCorpus(tb, "realdata-gguf", "truth.json", "the real GGUF files")
}

// RealdataTorch is the shared corpus of real PyTorch files (truth.json says
// what torch.load gives for each). Without it the test stops through Missing.
func RealdataTorch(tb testing.TB) string {
	tb.Helper()
	return sharedCorpus(tb, "realdata-torch", "truth.json", "the real PyTorch files")
}

// TorchPython returns /usr/bin/python3 when it can import torch (Debian's
// python3-torch, which a python3 earlier on PATH may shadow). Without it the
// test stops through Missing.
func TorchPython(tb testing.TB) string {
	tb.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, numpy").Run(); err != nil {
		Missing(tb, "/usr/bin/python3 cannot import torch and numpy ("+err.Error()+")",
			"install the Debian packages python3-torch and python3-numpy (scripts/install-test-deps.sh does)")
	}
	return py
}

// WriteTrainerCheckpoints writes, with torch (TorchPython), the Trainer-like
// checkpoints of optim/testdata/trainer_fixtures.py under dir: checkpoint-3,
// checkpoint-6, amsgrad-4 (AdamW with amsgrad), the poisoned variants
// poison-nan, poison-negative, poison-shape and poison-step, and
// expected.json (torch's own numbers).
func WriteTrainerCheckpoints(tb testing.TB, dir string) {
	tb.Helper()
	py := TorchPython(tb)
	script := filepath.Join(ModuleRoot(tb), "optim", "testdata", "trainer_fixtures.py")
	if out, err := exec.Command(py, script, dir).CombinedOutput(); err != nil {
		tb.Fatalf("%s: %v\n%s", script, err, out)
	}
}
