package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// The CI integrations, run as CI runs them: the pre-commit hook through the
// real pre-commit, the GitHub Action's run script with the environment
// variables the runner sets.

// ciFiles writes a healthy and an unhealthy (one NaN) .safetensors file into dir.
func ciFiles(t *testing.T, dir string) (healthy, unhealthy string) {
	t.Helper()
	src := filepath.Join(cliTiny(t, 0, ""), "model.safetensors")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	healthy, unhealthy = filepath.Join(dir, "good.safetensors"), filepath.Join(dir, "bad.safetensors")
	for _, p := range []string{healthy, unhealthy} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := synth.SetValues(unhealthy, "model.layers.1.mlp.up_proj.weight", map[int]float64{3: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	return healthy, unhealthy
}

// exitStatus is the exit status of a command that ran (err from Run).
func exitStatus(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// goBinary is the go command that builds the hook.
func goBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no go command on PATH or in GOROOT (%s): pre-commit needs it to build the hook", p)
	}
	return p
}

func goEnv(t *testing.T, gobin, key string) string {
	t.Helper()
	out, err := exec.Command(gobin, "env", key).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", key, err)
	}
	return strings.TrimSpace(string(out))
}

// TestPreCommitHook runs the ckpt-scan hook of .pre-commit-hooks.yaml with
// pre-commit try-repo, which builds ckpt from this repository (go install, as
// language: golang does for users) and runs it on the files given: it passes
// on a healthy file and fails, printing the report, on one with a NaN.
// pre-commit reads the committed hook manifest (try-repo includes uncommitted
// changes to tracked files only).
func TestPreCommitHook(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ckpt twice through pre-commit (about 10s each); not in -short")
	}
	precommit := testenv.Command(t, "pre-commit", "pre-commit")
	gobin := goBinary(t)
	root := cliModuleRoot(t)
	tmp := t.TempDir()
	target := filepath.Join(tmp, "target")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	ciFiles(t, target)

	// Everything pre-commit and go write goes under tmp, except the module
	// and build caches, which are shared read-mostly caches (no download
	// when they hold the modules; the proxy otherwise). pre-commit builds
	// in a fresh clone each run: -trimpath keeps the clone's directory out
	// of the build cache's keys, so a build cache that holds this source
	// from an earlier run serves it (the binary differs only in the file
	// names its debug information records).
	env := []string{
		"PATH=" + filepath.Dir(gobin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + tmp,
		"PRE_COMMIT_HOME=" + filepath.Join(tmp, "pre-commit"),
		"GOMODCACHE=" + goEnv(t, gobin, "GOMODCACHE"),
		"GOCACHE=" + goEnv(t, gobin, "GOCACHE"),
		"GOPROXY=" + goEnv(t, gobin, "GOPROXY"),
		"GOFLAGS=-mod=readonly -trimpath",
		"GOTOOLCHAIN=local",
		"GIT_AUTHOR_NAME=ckpt test", "GIT_AUTHOR_EMAIL=test@example.invalid",
		"GIT_COMMITTER_NAME=ckpt test", "GIT_COMMITTER_EMAIL=test@example.invalid",
		"GIT_CONFIG_NOSYSTEM=1",
		// the work tree of this repository may belong to another user in CI
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*",
	}
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = target, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", ".")

	tryRepo := func(file string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, precommit, "try-repo", root, "ckpt-scan", "--verbose", "--color", "never", "--files", file)
		cmd.Dir, cmd.Env = target, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		code := exitStatus(t, cmd.Run())
		return out.String(), code
	}
	out, code := tryRepo("good.safetensors")
	if code != 0 || !strings.Contains(out, "HEALTHY") {
		t.Fatalf("hook on a healthy file: exit %d\n%s", code, out)
	}
	out, code = tryRepo("bad.safetensors")
	if code != 1 || !strings.Contains(out, "Failed") || !strings.Contains(out, "model.layers.1.mlp.up_proj.weight") || !strings.Contains(out, "UNHEALTHY") {
		t.Fatalf("hook on a file with a NaN: exit %d, want 1 with the report\n%s", code, out)
	}
}

// TestActionScript runs scripts/action-scan.sh as action.yml runs it: CKPT,
// CKPT_PATHS, CKPT_ARGS, GITHUB_STEP_SUMMARY and GITHUB_OUTPUT set.
func TestActionScript(t *testing.T) {
	ckpt, err := exec.LookPath("ckpt") // this test binary, as TestMain puts it on PATH
	if err != nil {
		t.Fatalf("ckpt not on PATH: %v", err)
	}
	root := cliModuleRoot(t)
	script := filepath.Join(root, "scripts", "action-scan.sh")
	action, err := os.ReadFile(filepath.Join(root, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scripts/action-scan.sh", "CKPT:", "CKPT_PATHS:", "CKPT_ARGS:", "go build", "./cmd/ckpt"} {
		if !bytes.Contains(action, []byte(want)) {
			t.Errorf("action.yml does not mention %q", want)
		}
	}

	work := t.TempDir()
	models := filepath.Join(work, "my models")
	if err := os.Mkdir(models, 0o755); err != nil {
		t.Fatal(err)
	}
	healthy, _ := ciFiles(t, models)
	other := filepath.Join(work, "other.safetensors")
	data, _ := os.ReadFile(healthy)
	os.WriteFile(other, data, 0o644)

	runScript := func(paths, args string) (string, string, string, int) {
		summary, output := filepath.Join(t.TempDir(), "summary.md"), filepath.Join(t.TempDir(), "output")
		os.WriteFile(summary, []byte("earlier step's summary\n"), 0o644)
		cmd := exec.Command("bash", script)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "CKPT="+ckpt, "CKPT_PATHS="+paths, "CKPT_ARGS="+args,
			"GITHUB_STEP_SUMMARY="+summary, "GITHUB_OUTPUT="+output)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		code := exitStatus(t, cmd.Run())
		s, _ := os.ReadFile(summary)
		o, _ := os.ReadFile(output)
		if !strings.HasPrefix(string(s), "earlier step's summary\n") {
			t.Errorf("the summary was overwritten, not appended to:\n%s", s)
		}
		return out.String(), string(s), string(o), code
	}

	// A glob in a directory with a space, a plain path, blank lines.
	log, summary, output, code := runScript("  my models/good*.safetensors\n\nother.safetensors  \n", "")
	if code != 0 || output != "verdict=healthy\n" || strings.Count(summary, "✅ **healthy**") != 2 || !strings.Contains(log, "healthy") {
		t.Errorf("healthy files: exit %d, output %q\nsummary:\n%s\nlog:\n%s", code, output, summary, log)
	}
	// ** reaches every depth (both files under "my models" and other.safetensors)
	_, summary, _, code = runScript("**/*.safetensors", "")
	if code != 1 || strings.Count(summary, "**ckpt scan**") != 3 {
		t.Errorf("healthy files: exit %d, output %q\nsummary:\n%s\nlog:\n%s", code, output, summary, log)
	}
	log, summary, output, code = runScript("my models/*.safetensors", "--strict")
	if code != 1 || output != "verdict=unhealthy\n" || !strings.Contains(summary, "❌ **unhealthy**") ||
		!strings.Contains(summary, "model.layers.1.mlp.up_proj.weight") || !strings.Contains(log, "::error::") {
		t.Errorf("a file with a NaN: exit %d, output %q\nsummary:\n%s\nlog:\n%s", code, output, summary, log)
	}
	log, summary, output, code = runScript("missing.safetensors", "")
	if code != 2 || output != "verdict=error\n" || !strings.Contains(summary, "missing.safetensors") || !strings.Contains(log, "::error::") {
		t.Errorf("a missing file: exit %d, output %q\nsummary:\n%s\nlog:\n%s", code, output, summary, log)
	}
	if _, _, _, code := runScript("", ""); code != 2 {
		t.Errorf("no paths: exit %d, want 2", code)
	}
}
