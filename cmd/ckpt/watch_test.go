package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/synth"
)

// watchLine is one event line of ckpt watch --json, kept raw to check its keys.
type watchLine map[string]any

func (l watchLine) kind() string { s, _ := l["event"].(string); return s }
func (l watchLine) int(k string) int {
	f, _ := l[k].(float64)
	return int(f)
}
func (l watchLine) keys() string {
	var ks []string
	for k := range l {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

// watchRunner runs ckpt watch in the test's process, its stdout read line by line.
type watchRunner struct {
	lines  chan watchLine
	done   chan cliResult
	cancel context.CancelFunc
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startWatch(t *testing.T, args ...string) *watchRunner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	w := &watchRunner{lines: make(chan watchLine, 1000), done: make(chan cliResult, 1), cancel: cancel, stderr: &syncBuffer{}}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var l watchLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l = watchLine{"event": "NOT JSON: " + sc.Text()}
			}
			w.lines <- l
		}
		close(w.lines)
	}()
	go func() {
		err := runWatchCmd(ctx, args, pw, w.stderr)
		pw.Close()
		w.done <- cliResult{err: err, code: exitCode(err, w.stderr), stderr: w.stderr.String()}
	}()
	t.Cleanup(cancel)
	return w
}

// until collects lines until one satisfies stop, failing after limit.
func (w *watchRunner) until(t *testing.T, limit time.Duration, what string, stop func(watchLine) bool) []watchLine {
	t.Helper()
	var got []watchLine
	deadline := time.After(limit)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				t.Fatalf("watch ended while waiting for %s; events %v\nstderr:\n%s", what, got, w.stderr.String())
			}
			got = append(got, l)
			if stop(l) {
				return got
			}
		case <-deadline:
			t.Fatalf("no %s after %v; events %v\nstderr:\n%s", what, limit, got, w.stderr.String())
		}
	}
}

// quiet collects the lines that arrive within d.
func (w *watchRunner) quiet(d time.Duration) []watchLine {
	var got []watchLine
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				return got
			}
			got = append(got, l)
		case <-deadline:
			return got
		}
	}
}

func writeFileT(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The acceptance test of issue 14: a diverging run written checkpoint by
// checkpoint (shards first, trainer_state.json last; rotation keeps the 2
// newest) while ckpt watch --json --keep follows it. The two ways of
// watching mostly wait for events: they run in parallel (each has its own
// run directory and watcher).
func TestWatchFollowsDivergingRun(t *testing.T) {
	t.Run("notify", func(t *testing.T) { t.Parallel(); testWatchFollows(t) })
	t.Run("poll", func(t *testing.T) { t.Parallel(); testWatchFollows(t, "--poll", "50ms") })
}

func testWatchFollows(t *testing.T, flags ...string) {
	o := synth.RunOptions{Seed: 9, Checkpoints: 10, JumpStep: 450, NaNStep: 850, Shards: 2}
	tmp := t.TempDir()
	staging := filepath.Join(tmp, "staging")
	truth, err := synth.WriteRunTruth(staging, o)
	if err != nil {
		t.Fatal(err)
	}
	run, keep := filepath.Join(tmp, "run"), filepath.Join(tmp, "keep")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, append(flags, "--json", "--keep", keep, run)...)
	var all []watchLine
	const limit = 30 * time.Second

	for k, step := range truth.Steps {
		src, dst := filepath.Join(staging, truth.Dirs[k]), filepath.Join(run, truth.Dirs[k])
		if err := synth.CopyCheckpoint(src, dst, false); err != nil { // shards first
			t.Fatal(err)
		}
		if k == 3 {
			// A shard half written, and the trainer pauses: nothing may be reported.
			shard := filepath.Join(dst, synth.ShardName(2, 2))
			data, err := os.ReadFile(shard)
			if err != nil {
				t.Fatal(err)
			}
			writeFileT(t, shard, data[:len(data)/2])
			for _, l := range w.quiet(400 * time.Millisecond) {
				all = append(all, l)
				if l.int("step") == step || l.kind() == "checkpoint" {
					t.Fatalf("event for a checkpoint still being written: %v", l)
				}
			}
			writeFileT(t, shard, data)
		}
		state, err := os.ReadFile(filepath.Join(src, synth.StateFile))
		if err != nil {
			t.Fatal(err)
		}
		writeFileT(t, filepath.Join(dst, synth.StateFile), state) // then trainer_state.json
		all = append(all, w.until(t, limit, "checkpoint event for step "+strconv.Itoa(step), func(l watchLine) bool {
			return l.kind() == "checkpoint" && l.int("step") == step
		})...)
		// The events that follow a checkpoint's: the last is the kept copy
		// of a healthy one, the unhealthy event of a damaged one.
		all = append(all, w.until(t, limit, "last event for step "+strconv.Itoa(step), func(l watchLine) bool {
			return l.int("step") == step && (l.kind() == "kept" || l.kind() == "unhealthy")
		})...)
		broken := filepath.Join(run, "checkpoint-"+strconv.Itoa(truth.Steps[5]+50))
		switch k {
		case 5:
			// An interrupted save (a partial shard, no trainer_state.json)
			// that is never completed: the next save supersedes it.
			os.Mkdir(broken, 0o755)
			writeFileT(t, filepath.Join(broken, "model-00001-of-00002.safetensors"), []byte("partial"))
		case 6:
			os.RemoveAll(broken) // the trainer cleans it up
		}
		// Rotation: keep the 2 newest checkpoints.
		if k >= 2 {
			if err := os.RemoveAll(filepath.Join(run, truth.Dirs[k-2])); err != nil {
				t.Fatal(err)
			}
		}
	}
	all = append(all, w.quiet(200*time.Millisecond)...)
	w.cancel()
	res := <-w.done
	for l := range w.lines {
		all = append(all, l)
	}
	res.wantCode(t, 0)
	if !strings.Contains(res.stderr, "never completed (no trainer_state.json) and a later checkpoint did; not checked") {
		t.Errorf("stderr does not mention the interrupted save:\n%s", res.stderr)
	}
	if strings.Contains(res.stderr, "notifications unavailable") {
		t.Errorf("fell back to polling:\n%s", res.stderr)
	}

	wantKeys := map[string]string{
		"checkpoint":   "event findings path rel_update step update_ratio_to_median verdict",
		"unhealthy":    "culprits event path step",
		"training_log": "event kind message step",
		"drift_onset":  "baseline event factor from_path from_step rel_update to_path to_step",
		"kept":         "copy event method path reasons released step",
	}
	var steps []int
	var onsets, unhealthy []watchLine
	logKinds := map[string]int{}
	for _, l := range all {
		if want, ok := wantKeys[l.kind()]; !ok || l.keys() != want {
			t.Errorf("event %v: keys %q, want %q", l, l.keys(), want)
		}
		switch l.kind() {
		case "checkpoint":
			steps = append(steps, l.int("step"))
			healthy := l.int("step") < truth.FirstUnhealthy
			if (l["verdict"] == "healthy") != healthy {
				t.Errorf("step %d: verdict %v", l.int("step"), l["verdict"])
			}
		case "drift_onset":
			onsets = append(onsets, l)
		case "unhealthy":
			unhealthy = append(unhealthy, l)
		case "training_log":
			logKinds[l["kind"].(string)] = l.int("step")
		}
	}
	if !slices.Equal(steps, truth.Steps) {
		t.Errorf("checkpoint events for steps %v, want exactly %v", steps, truth.Steps)
	}
	if len(onsets) != 1 || onsets[0].int("from_step") != truth.DriftFrom || onsets[0].int("to_step") != truth.DriftTo {
		t.Errorf("drift onset events %v, want one from step %d to %d", onsets, truth.DriftFrom, truth.DriftTo)
	}
	if len(unhealthy) == 0 || unhealthy[0].int("step") != truth.FirstUnhealthy {
		t.Errorf("unhealthy events %v, want the first at step %d", unhealthy, truth.FirstUnhealthy)
	} else if c, _ := unhealthy[0]["culprits"].([]any); len(c) == 0 {
		t.Errorf("unhealthy event without culprits: %v", unhealthy[0])
	}
	if got, ok := logKinds["nonfinite_loss"]; !ok || got != truth.FirstNonFiniteLossStep {
		t.Errorf("training log events %v, want nonfinite_loss at %d", logKinds, truth.FirstNonFiniteLossStep)
	}

	// The kept copies outlived the rotation, byte for byte.
	lastHealthy := "checkpoint-" + strconv.Itoa(truth.LastHealthy)
	if _, err := os.Stat(filepath.Join(run, lastHealthy)); err == nil {
		t.Fatalf("rotation did not delete %s: the test proves nothing", lastHealthy)
	}
	for _, name := range []string{lastHealthy, "checkpoint-" + strconv.Itoa(truth.DriftFrom)} {
		des, err := os.ReadDir(filepath.Join(staging, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			want, _ := os.ReadFile(filepath.Join(staging, name, de.Name()))
			got, err := os.ReadFile(filepath.Join(keep, name, de.Name()))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("kept %s/%s is not the checkpoint's bytes (%v)", name, de.Name(), err)
			}
		}
	}
	des, _ := os.ReadDir(keep)
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	sort.Strings(names)
	if want := []string{"checkpoint-" + strconv.Itoa(truth.DriftFrom), lastHealthy, "kept.json"}; !slices.Equal(names, want) {
		t.Errorf("keep directory holds %v, want %v", names, want)
	}
	var man struct {
		Kept []struct {
			Step    int
			Reasons []string
		}
	}
	data, _ := os.ReadFile(filepath.Join(keep, "kept.json"))
	if err := json.Unmarshal(data, &man); err != nil || len(man.Kept) != 2 {
		t.Errorf("kept.json: %v\n%s", err, data)
	}
}

func TestWatchOnceHookAndExitOn(t *testing.T) {
	run, truth := writeRun(t, synth.RunOptions{Seed: 5, Checkpoints: 8, JumpStep: 350, NaNStep: 650})
	hooks := t.TempDir()
	// Text output, the hook run with the event on stdin, stop at the first unhealthy.
	t.Setenv("HOOKS", hooks)
	r := cliRun(t, "watch", "--once", "--exit-on", "unhealthy",
		"--on-unhealthy", `cat > "$HOOKS/$CKPT_STEP.json"; echo "$CKPT_PATH" > "$HOOKS/$CKPT_STEP.path"`, run)
	r.wantCode(t, 1)
	if !strings.Contains(r.stdout, "UNHEALTHY step "+strconv.Itoa(truth.FirstUnhealthy)) || !strings.Contains(r.stdout, "DRIFT ONSET between step "+strconv.Itoa(truth.DriftFrom)) {
		t.Errorf("text output:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "step "+strconv.Itoa(truth.FirstUnhealthy+100)+" ") {
		t.Errorf("--exit-on unhealthy went on after the first unhealthy checkpoint:\n%s", r.stdout)
	}
	first := strconv.Itoa(truth.FirstUnhealthy)
	var ev struct {
		Event    string
		Step     int
		Culprits []any
	}
	data, err := os.ReadFile(filepath.Join(hooks, first+".json"))
	if err != nil || json.Unmarshal(data, &ev) != nil || ev.Event != "unhealthy" || ev.Step != truth.FirstUnhealthy || len(ev.Culprits) == 0 {
		t.Errorf("hook stdin: %v %s", err, data)
	}
	if p, _ := os.ReadFile(filepath.Join(hooks, first+".path")); strings.TrimSpace(string(p)) != filepath.Join(run, "checkpoint-"+first) {
		t.Errorf("hook CKPT_PATH %q", p)
	}
	des, _ := os.ReadDir(hooks)
	if len(des) != 2 {
		t.Errorf("hook ran %d times' files: %v", len(des)/2, des)
	}

	// --exit-on drift stops at the onset; --once alone exits 1 on damage.
	r = cliRun(t, "watch", "--once", "--json", "--exit-on", "drift", run)
	r.wantCode(t, 1)
	lines := cliJSON(t, r.stdout)
	if last := lines[len(lines)-1]; last["event"] != "drift_onset" {
		t.Errorf("--exit-on drift: last event %v", last)
	}
	cliRun(t, "watch", "--once", run).wantCode(t, 1)
	healthy, _ := writeRun(t, synth.RunOptions{Seed: 5, Checkpoints: 3, JumpStep: 250, NaNStep: -1})
	cliRun(t, "watch", "--once", healthy).wantCode(t, 0)

	for _, bad := range [][]string{
		{"watch"},
		{"watch", run, run},
		{"watch", "--exit-on", "nan", run},
		{"watch", "--settle", "-1s", run},
		{"watch", "--keep-copy", run},
	} {
		cliRun(t, bad...).wantCode(t, 2)
	}
	cliRun(t, "watch", "--once", filepath.Join(t.TempDir(), "missing")).wantCode(t, 2)
}

// TestWatchHostileCorpus puts each malformed file of the hostile corpus in a
// complete checkpoint (trainer_state.json written) of a run: watch --once must
// end quickly, report it unhealthy in JSON that parses, and never panic.
func TestWatchHostileCorpus(t *testing.T) {
	for _, c := range hostileCorpus(t) {
		fi, err := os.Stat(c.Path)
		if err != nil || !fi.Mode().IsRegular() || c.Name == "million-tensors" {
			continue // directories are checkpoints of their own; the big header is covered by scan
		}
		run := filepath.Join(t.TempDir(), "run")
		ck := filepath.Join(run, "checkpoint-10")
		if err := os.MkdirAll(ck, 0o755); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(c.Path)
		writeFileT(t, filepath.Join(ck, "model.safetensors"), data)
		writeFileT(t, filepath.Join(ck, "trainer_state.json"), []byte(`{"global_step": 10, "log_history": []}`))
		r := cliRunBounded(t, 20*time.Second, c.Name, "watch", "--once", "--json", run)
		if r.code != 1 {
			t.Errorf("%s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", c.Name, r.code, r.stdout, r.stderr)
			continue
		}
		kinds := ""
		for _, l := range cliJSON(t, r.stdout) {
			kinds += l["event"].(string) + " "
		}
		if kinds != "checkpoint unhealthy " {
			t.Errorf("%s: events %q, want a checkpoint and an unhealthy event", c.Name, kinds)
		}
	}
}

// TestWatchStopsOnSignal runs the ckpt binary: SIGTERM (as Slurm or a job
// script sends) and SIGINT end the watch promptly with 128 plus the signal's
// number (143, 130), as every command does.
func TestWatchStopsOnSignal(t *testing.T) {
	ckpt, err := exec.LookPath("ckpt") // this test binary, as TestMain puts it on PATH
	if err != nil {
		t.Fatalf("ckpt not on PATH: %v", err)
	}
	run, _ := writeRun(t, synth.RunOptions{Seed: 1, Checkpoints: 2, JumpStep: 150, NaNStep: -1})
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		cmd := exec.Command(ckpt, "watch", "--json", run)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() {
			cmd.Process.Kill()
			t.Fatalf("no event from ckpt watch: %s", stderr.String())
		}
		cmd.Process.Signal(sig)
		want := 128 + int(sig.(syscall.Signal))
		go io.Copy(io.Discard, stdout)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if code := cmd.ProcessState.ExitCode(); code != want {
				t.Errorf("%v: ckpt watch ended with %v (exit %d), want exit %d\n%s", sig, err, code, want, stderr.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: ckpt watch still running 10s later", sig)
		}
	}
}
