package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/testenv"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// Helpers for the end-to-end tests of the commands; any command's tests may use
// them.

// cliResult is what one run of the command line produced.
type cliResult struct {
	stdout, stderr string
	code           int // the exit status main would return
	err            error
}

// cliRun runs ckpt with args exactly as main does (run, then exitCode), with
// stdout and stderr captured.
func cliRun(t *testing.T, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(args, &out, &errb)
	code := exitCode(err, &errb)
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code, err: err}
}

// cliRunBounded is cliRun for hostile input: a panic becomes exit -1 with the
// panic on stderr (so the test reports it, not crashes), and no answer within
// limit fails the test, naming what (label) was running.
func cliRunBounded(t *testing.T, limit time.Duration, label string, args ...string) cliResult {
	t.Helper()
	done := make(chan cliResult, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- cliResult{code: -1, stderr: fmt.Sprint("panic: ", p)}
			}
		}()
		done <- cliRun(t, args...)
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(limit):
		t.Fatalf("%s: no answer after %v", label, limit)
		return cliResult{}
	}
}

// wantCode fails the test when the exit status is not want, showing the output.
func (r cliResult) wantCode(t *testing.T, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, want, r.stdout, r.stderr)
	}
}

// cliModuleRoot is the directory holding go.mod.
func cliModuleRoot(t *testing.T) string { return testenv.ModuleRoot(t) }

// cliRealdata is the shared corpus of real files (absent: a failure in CI, a skip elsewhere).
func cliRealdata(t *testing.T) string { return testenv.Realdata(t) }

// cliTiny writes a healthy tiny Qwen2-style checkpoint (BF16 unless dtype is
// given) into a fresh directory and returns it; shards > 1 makes it sharded.
func cliTiny(t *testing.T, shards int, dtype string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ckpt")
	o := synth.Options{Arch: synth.Tiny, Seed: 7, Shards: shards}
	if dtype != "" {
		o.DType = formats.DType(dtype)
	}
	if err := synth.WriteCheckpoint(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cliJSON decodes stdout holding one JSON object per line.
func cliJSON(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimRight(stdout, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stdout line is not a JSON object: %v\n%s", err, line)
		}
		out = append(out, m)
	}
	return out
}
