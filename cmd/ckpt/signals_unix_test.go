//go:build unix

package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// signalArch makes an F32 checkpoint of about 64 MB (-short) or 270 MB:
// large enough that a repair takes seconds.
func signalArch() synth.Arch {
	a := synth.Arch{Name: "signal", VocabSize: 32000, Hidden: 512, Intermediate: 2048, Layers: 8, Heads: 8, KVHeads: 4}
	if testing.Short() {
		a.Layers, a.VocabSize = 2, 8000
	}
	return a
}

// ckptBinary is the test binary installed as "ckpt" on PATH by TestMain
// (testscript.Main): running it runs main, signals and exit status included.
func ckptBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("ckpt")
	if err != nil || !strings.Contains(bin, "testscript-main") {
		t.Fatalf("the ckpt command TestMain installs is not on PATH (found %q, %v)", bin, err)
	}
	return bin
}

// signalRun starts ckpt args and sends sig once ready returns true (polled
// every millisecond) and delay has passed; it returns the exit status, how long
// the process took to end after the signal (0 when it ended before), and stderr.
func signalRun(t *testing.T, bin string, sig syscall.Signal, ready func() bool, delay time.Duration, args ...string) (int, time.Duration, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := func(err error) int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return 1128 + int(ws.Signal()) // killed, not exited: 1000+ what a shell reports
			}
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}
	for deadline := time.Now().Add(60 * time.Second); !ready(); time.Sleep(time.Millisecond) {
		select {
		case err := <-done:
			return exited(err), 0, stderr.String()
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("%v: never got ready", args)
		}
	}
	select {
	case err := <-done:
		return exited(err), 0, stderr.String()
	case <-time.After(delay):
	}
	sent := time.Now()
	if err := cmd.Process.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) { // it ended as the delay did: before the signal
			return exited(<-done), 0, stderr.String()
		}
		t.Fatal(err)
	}
	select {
	case err := <-done:
		return exited(err), time.Since(sent), stderr.String()
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v: still running 20 s after %v", args, sig)
	}
	return 0, 0, ""
}

// treeSums maps every file under dir to its SHA-256.
func treeSums(t *testing.T, dir string) map[string][sha256.Size]byte {
	t.Helper()
	out := map[string][sha256.Size]byte{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = sha256.Sum256(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signalFixture writes GOOD and BAD (GOOD with one NaN) into root.
func signalFixture(t *testing.T, root string) (good, bad string) {
	t.Helper()
	good, bad = filepath.Join(root, "good"), filepath.Join(root, "bad")
	for _, d := range []string{good, bad} {
		if err := synth.WriteCheckpoint(d, synth.Options{Arch: signalArch(), DType: formats.F32, Seed: 5, Shards: 2}); err != nil {
			t.Fatal(err)
		}
	}
	shard := filepath.Join(bad, synth.ShardName(2, 2))
	if err := synth.SetValues(shard, "model.norm.weight", map[int]float64{3: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	return good, bad
}

// timed runs ckpt args to the end and returns how long it took.
func timed(t *testing.T, bin string, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil && !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return time.Since(start)
}

// TestSignals interrupts a real multi-hundred-megabyte repair, then scan, diff
// and bisect, with SIGINT and SIGTERM at seeded random points.
func TestSignals(t *testing.T) {
	bin := ckptBinary(t)
	root := t.TempDir()
	good, bad := signalFixture(t, root)
	t.Run("repair", func(t *testing.T) { repairSignals(t, bin, root, good, bad) })
	t.Run("read", func(t *testing.T) { readSignals(t, bin, good, bad) })
}

// repairSignals interrupts a real repair with SIGINT and SIGTERM at seeded
// random points — anywhere (planning, writing, verifying) and after the
// temporary output appeared (writing) — and requires each time: exit 130 or
// 143 within a second, nothing left beside OUT, OUT absent, and both inputs
// unchanged (checked by stat after each run, by SHA-256 at the end).
func repairSignals(t *testing.T, bin, root, good, bad string) {
	inputs := map[string]map[string][sha256.Size]byte{good: treeSums(t, good), bad: treeSums(t, bad)}
	stamps := func() string {
		var b strings.Builder
		for _, d := range []string{good, bad} {
			filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
				if err == nil {
					fmt.Fprintf(&b, "%s %d %v %v\n", p, fi.Size(), fi.ModTime(), fi.Mode())
				}
				return err
			})
		}
		return b.String()
	}
	before := stamps()
	outParent := filepath.Join(root, "outs")
	if err := os.Mkdir(outParent, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(outParent, "fixed")
	args := []string{"repair", "--no-progress", bad, "--from", good, "-o", out}
	whole := timed(t, bin, args...)
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	tempExists := func() bool {
		e, _ := os.ReadDir(outParent)
		return len(e) > 0
	}
	now := func() bool { return true }

	rng := rand.New(rand.NewPCG(17, 17))
	type point struct {
		sig   syscall.Signal
		ready func() bool
		phase string
	}
	points := []point{{syscall.SIGINT, now, "anywhere"}, {syscall.SIGTERM, tempExists, "writing"}, {syscall.SIGINT, tempExists, "writing"}}
	if !testing.Short() {
		points = append(points, point{syscall.SIGTERM, now, "anywhere"}, point{syscall.SIGINT, now, "anywhere"}, point{syscall.SIGTERM, tempExists, "writing"})
	}
	interrupted := 0
	for i, p := range points {
		delay := whole/8 + time.Duration(rng.Int64N(int64(whole)/2)) // past start-up: see readSignals
		label := fmt.Sprintf("#%d %v while %s (+%v of %v)", i, p.sig, p.phase, delay.Round(time.Millisecond), whole.Round(time.Millisecond))
		code, took, stderr := signalRun(t, bin, p.sig, p.ready, delay, args...)
		t.Logf("%s: exit %d, %v after the signal", label, code, took)
		switch {
		case code == 1128+int(p.sig):
			// Killed the default way: the signal came before main installed its
			// handler (the shell reports the same status); nothing was started.
			t.Logf("%s: the signal came during start-up", label)
		case took == 0 || code == 0 || strings.Contains(stderr, "as the command finished"): // finished before the signal
			t.Logf("%s: the repair finished first", label)
			if err := os.RemoveAll(out); err != nil {
				t.Fatal(err)
			}
		case code != 128+int(p.sig):
			t.Errorf("%s: exit %d, want %d\nstderr: %s", label, code, 128+int(p.sig), stderr)
		default:
			interrupted++
			// The promise is a second; the bound leaves room for a loaded
			// 2-core machine, where an fsync in flight alone has taken 1.1 s.
			if took > 2*time.Second {
				t.Errorf("%s: took %v to stop, want about a second", label, took)
			}
			if !strings.Contains(stderr, "interrupted: nothing was written") {
				t.Errorf("%s: stderr does not say it was interrupted and nothing was written: %q", label, stderr)
			}
		}
		if left, _ := os.ReadDir(outParent); len(left) > 0 {
			t.Errorf("%s: left %v behind", label, left[0].Name())
			os.RemoveAll(outParent)
			os.Mkdir(outParent, 0o755)
		}
		if stamps() != before {
			t.Fatalf("%s: an input changed", label)
		}
	}
	if interrupted == 0 {
		t.Errorf("no repair was interrupted: the checkpoint is too small to test signals")
	}
	for dir, sums := range inputs {
		if now := treeSums(t, dir); fmt.Sprint(now) != fmt.Sprint(sums) {
			t.Errorf("input %s changed", dir)
		}
	}
}

// readSignals interrupts inspect, scan, diff and bisect with SIGINT at a seeded
// random point of a run: each exits 130 within a second.
func readSignals(t *testing.T, bin, good, bad string) {
	rng := rand.New(rand.NewPCG(23, 23))
	// inspect only parses headers and the index: one naming 40,000 absent
	// tensors takes it a second or so, without a context to watch.
	ghosts := ghostIndexCheckpoint(t, 40_000)
	for _, args := range [][]string{
		{"inspect", ghosts},
		{"scan", "--no-progress", bad},
		{"diff", "--no-progress", good, bad},
		{"bisect", "--no-progress", good, bad},
	} {
		whole := timed(t, bin, args...)
		// Past start-up (a signal before main installs its handler kills the
		// process the default way) and before the end.
		delay := whole/4 + time.Duration(rng.Int64N(int64(whole)/2))
		code, took, stderr := signalRun(t, bin, syscall.SIGINT, func() bool { return true }, delay, args...)
		label := fmt.Sprintf("%s: SIGINT at +%v of %v", args[0], delay.Round(time.Millisecond), whole.Round(time.Millisecond))
		t.Logf("%s: exit %d, %v after the signal", label, code, took)
		switch {
		case took == 0 || (code < 2 && stderr == ""):
			t.Logf("%s: finished first (exit %d)", label, code)
		case code == 1130:
			t.Logf("%s: the signal came during start-up, before main installed its handler", label)
		case code != 130:
			t.Errorf("%s: exit %d, want 130\nstderr: %s", label, code, stderr)
		case took > time.Second:
			t.Errorf("%s: took %v to stop, want under a second", label, took)
		case !strings.Contains(stderr, "SIGINT"):
			t.Errorf("%s: stderr does not say it was interrupted: %q", label, stderr)
		}
	}
}
