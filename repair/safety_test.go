package repair

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// childEnv carries, to a re-executed test binary, the repair it must run.
const childEnv = "CKPT_REPAIR_TEST_CHILD"

type childSpec struct {
	Bad, Good, Out string
	Strategy       Strategy
	Force          bool
	ChunkBytes     int
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		var c childSpec
		if err := json.Unmarshal([]byte(spec), &c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		_, err := Run(context.Background(), Options{Bad: c.Bad, Good: c.Good, Out: c.Out, Strategy: c.Strategy,
			Force: c.Force, ChunkBytes: c.ChunkBytes, Version: "test-version"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	removeTorchFixture()
	os.Exit(code)
}

// besideOut lists the directory holding OUT, sorted.
func besideOut(t testing.TB, out string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(out))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// faultAt returns hooks that fail the n-th operation named op (1-based) with
// err, and a counter of the operations seen.
func faultAt(op string, n int, err error) (*hooks, *int) {
	seen := 0
	return &hooks{skipSpaceCheck: true, fault: func(o, path string) error {
		if o != op {
			return nil
		}
		seen++
		if seen == n {
			return err
		}
		return nil
	}}, &seen
}

// TestDiskFullLeavesNoOutput makes every kind of output operation fail in
// turn (a write anywhere in the header, the data, the index or a copied file;
// a create; an fsync; the final rename) and checks each time that the error
// says so, that no OUT and no temporary file is left, and that the inputs are
// unchanged.
func TestDiskFullLeavesNoOutput(t *testing.T) {
	bad, good, out := pair(t, 2, dmgA, dmgB)
	before := treeSums(t, bad, good)
	wantBeside := besideOut(t, out)
	opts := Options{Bad: bad, Good: good, Out: out, Version: "v", ChunkBytes: 512}

	// Count the operations of a successful run (into another OUT).
	counts := map[string]int{}
	o := opts
	o.Out = filepath.Join(t.TempDir(), "count")
	o.hooks = &hooks{fault: func(op, path string) error { counts[op]++; return nil }}
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if counts["write"] < 20 || counts["sync"] < 3 || counts["rename"] != 1 {
		t.Fatalf("operation counts %v: the fixture is too small to exercise the failures", counts)
	}
	type fault struct {
		op  string
		n   int
		err error
	}
	var faults []fault
	for _, n := range spread(counts["write"], 24) {
		faults = append(faults, fault{"write", n, syscall.ENOSPC})
	}
	for n := 1; n <= counts["create"]; n++ {
		faults = append(faults, fault{"create", n, syscall.ENOSPC})
	}
	for n := 1; n <= counts["sync"]; n++ {
		faults = append(faults, fault{"sync", n, syscall.EIO})
	}
	faults = append(faults, fault{"rename", 1, syscall.EIO})
	for i, f := range faults {
		o := opts
		o.hooks, _ = faultAt(f.op, f.n, f.err)
		o.hooks.buffered = i%2 == 1 // both the kernel copy and the buffered one
		rep, err := Run(context.Background(), o)
		if !errors.Is(err, f.err) {
			t.Fatalf("%s #%d failing with %v: error %v", f.op, f.n, f.err, err)
		}
		if rep == nil || rep.Written {
			t.Fatalf("%s #%d: report says written", f.op, f.n)
		}
		if _, serr := os.Lstat(out); serr == nil {
			t.Fatalf("%s #%d failing: OUT exists", f.op, f.n)
		}
		if got := besideOut(t, out); fmt.Sprint(got) != fmt.Sprint(wantBeside) {
			t.Fatalf("%s #%d failing: left beside OUT %v, want %v", f.op, f.n, got, wantBeside)
		}
	}
	assertUnchanged(t, before, bad, good)
}

// spread picks up to k operation numbers from 1..n, evenly, always 1 and n.
func spread(n, k int) []int {
	if n <= k {
		out := make([]int, n)
		for i := range out {
			out[i] = i + 1
		}
		return out
	}
	out := []int{}
	for i := 0; i < k; i++ {
		out = append(out, 1+i*(n-1)/(k-1))
	}
	return out
}

// killArch makes a checkpoint of a few MB: big enough that a repair takes a
// while, small enough for a loop of them.
var killArch = synth.Arch{Name: "kill-test", VocabSize: 4096, Hidden: 128, Intermediate: 512, Layers: 4, Heads: 4, KVHeads: 2}

// TestKillAtRandomPoints runs the repair in a child process and kills it with
// SIGKILL at random moments. Every time, OUT is either absent or complete and
// verified: byte-identical to the output of an uninterrupted run. With
// --force over an existing OUT, OUT is always either the old one or the new
// one. The inputs never change.
func TestKillAtRandomPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("kill loop skipped in -short mode")
	}
	root := t.TempDir()
	bad, good := filepath.Join(root, "checkpoint-200"), filepath.Join(root, "checkpoint-100")
	makeCheckpoint(t, good, killArch, 1, 2)
	makeCheckpoint(t, bad, killArch, 2, 2)
	damage(t, bad, dmgA, "model.embed_tokens.weight")
	before := treeSums(t, bad, good)

	// The reference: an uninterrupted run, to an OUT of the same name elsewhere.
	refDir := t.TempDir()
	spec := childSpec{Bad: bad, Good: good, ChunkBytes: 64 << 10}
	spec.Out = filepath.Join(refDir, "out")
	if msg, err := runChild(spec, nil); err != nil {
		t.Fatalf("reference run: %v: %s", err, msg)
	}
	ref := contentTree(t, spec.Out)
	// How long a run takes, once the inputs are cached, until OUT appears: the
	// kills are spread over that (and a little past it). A process may take
	// much longer to exit than to finish its work (the race detector's does).
	spec.Out = filepath.Join(refDir, "warm")
	full, err := timeToOut(spec)
	if err != nil {
		t.Fatalf("timing run: %v", err)
	}

	workDir := t.TempDir()
	spec.Out = filepath.Join(workDir, "out")
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(2500 * time.Millisecond)
	var absent, complete int
	for i := 0; i < 40 && time.Now().Before(deadline); i++ {
		delay := time.Duration(rng.Int64N(int64(full) * 11 / 10))
		killAt(spec, delay)
		if _, err := os.Lstat(spec.Out); err != nil {
			absent++
		} else {
			complete++
			if !sameContent(ref, contentTree(t, spec.Out)) {
				t.Fatalf("kill after %v: OUT exists but differs from the uninterrupted run's output", delay)
			}
			if err := os.RemoveAll(spec.Out); err != nil {
				t.Fatal(err)
			}
		}
		cleanTemps(t, workDir)
	}
	t.Logf("OUT appears %v after the start; killed runs left no OUT %d times, a complete one %d times", full, absent, complete)
	if absent == 0 {
		t.Error("no kill landed before the rename: the loop tests nothing")
	}

	// --force over an existing OUT (the reference output of another strategy).
	old := childSpec{Bad: bad, Good: good, Out: spec.Out, Strategy: All, ChunkBytes: 64 << 10}
	if msg, err := runChild(old, nil); err != nil {
		t.Fatalf("writing the old OUT: %v: %s", err, msg)
	}
	oldTree := contentTree(t, spec.Out)
	spec.Force = true
	var kept, replaced int
	deadline = time.Now().Add(2 * time.Second)
	for i := 0; i < 40 && time.Now().Before(deadline); i++ {
		delay := time.Duration(rng.Int64N(int64(full) * 11 / 10))
		killAt(spec, delay)
		if _, err := os.Lstat(spec.Out); err != nil {
			t.Fatalf("after a kill during --force, OUT is missing")
		}
		switch now := contentTree(t, spec.Out); {
		case sameContent(oldTree, now):
			kept++
		case sameContent(ref, now):
			replaced++
			if err := os.RemoveAll(spec.Out); err != nil {
				t.Fatal(err)
			}
			if msg, err := runChild(old, nil); err != nil {
				t.Fatalf("rewriting the old OUT: %v: %s", err, msg)
			}
			oldTree = contentTree(t, spec.Out)
		default:
			t.Fatalf("kill after %v during --force: OUT is neither the old output nor the new one", delay)
		}
		cleanTemps(t, workDir)
	}
	t.Logf("--force: old OUT kept %d times, replaced %d times", kept, replaced)
	assertUnchanged(t, before, bad, good)
}

// timeToOut runs one repair in a child process and measures when its OUT
// appears.
func timeToOut(spec childSpec) (time.Duration, error) {
	data, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(data))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		if _, err := os.Lstat(spec.Out); err == nil {
			at := time.Since(start)
			if err := <-done; err != nil {
				return 0, fmt.Errorf("%v: %s", err, stderr.String())
			}
			return at, nil
		}
		select {
		case err := <-done:
			if _, serr := os.Lstat(spec.Out); serr == nil && err == nil {
				return time.Since(start), nil
			}
			return 0, fmt.Errorf("the child ended without writing OUT: %v: %s", err, stderr.String())
		case <-time.After(time.Millisecond):
		}
	}
}

// killAt runs one repair in a child process and kills it after delay unless
// it finished first.
func killAt(spec childSpec, delay time.Duration) {
	runChild(spec, &delay)
}

// runChild runs one repair in a child process; with a delay, it is killed
// (SIGKILL) after that long, unless it finished first.
func runChild(spec childSpec, delay *time.Duration) (string, error) {
	data, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(data))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	if delay != nil {
		timer := time.AfterFunc(*delay, func() { cmd.Process.Kill() })
		defer timer.Stop()
	}
	err := cmd.Wait()
	return stderr.String(), err
}

// contentTree maps every path under root (relative) to its content's SHA-256,
// or "dir"; nil when root does not exist.
func contentTree(t testing.TB, root string) map[string]string {
	t.Helper()
	if _, err := os.Lstat(root); err != nil {
		return nil
	}
	out := map[string]string{}
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if info.IsDir() {
			out[rel] = "dir"
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[rel] = fmt.Sprintf("%x", sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameContent(a, b map[string]string) bool { return a != nil && maps.Equal(a, b) }

// cleanTemps removes what killed repairs left beside OUT (only their
// temporary names) and fails on anything else.
func cleanTemps(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() == "out" {
			continue
		}
		if m1, _ := filepath.Match(".out.ckpt-tmp-*", e.Name()); !m1 {
			if m2, _ := filepath.Match(".out.ckpt-old-*", e.Name()); !m2 {
				t.Fatalf("unexpected file beside OUT: %s", e.Name())
			}
		}
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// flipMantissaBit flips the lowest mantissa bit of one element of a BF16
// tensor in the file at path, choosing an element whose flip leaves the
// tensor's counts and extremes as they were (so only its bytes tell), and
// returns the element's index.
func flipMantissaBit(t testing.TB, path, name string) int {
	t.Helper()
	f, err := formats.ReadFileHeader(path, filepath.Base(path))
	if err != nil || f.Header == nil {
		t.Fatalf("%s: %v %v", path, err, f.Err)
	}
	var tn *formats.Tensor
	for _, x := range f.Tensors() {
		if x.Name == name {
			tn = x
		}
	}
	if tn == nil || tn.DType != formats.BF16 {
		t.Fatalf("%s: no BF16 tensor %q", path, name)
	}
	data := make([]byte, tn.Length())
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.ReadAt(data, tn.Offset); err != nil {
		t.Fatal(err)
	}
	before := inspect.Stats(formats.BF16, data)
	for i := len(data)/4 + 1; i < len(data)/2; i++ {
		data[2*i] ^= 1
		after := inspect.Stats(formats.BF16, data)
		if differ(&before, &after) == "" {
			if _, err := fh.WriteAt(data[2*i:2*i+1], tn.Offset+int64(2*i)); err != nil {
				t.Fatal(err)
			}
			return i
		}
		data[2*i] ^= 1
	}
	t.Fatalf("%s: no element of %s can be flipped unseen by its statistics", path, name)
	return -1
}

// TestVerificationComparesBytes flips one mantissa bit of a tensor of the
// output after it is written and before it is verified (through the fault
// hook, when the weight file is fsynced): a tensor kept from BAD, one taken
// from GOOD, one merged element by element. The flip leaves the tensor's
// statistics unchanged, so only a comparison of bytes can see it: the repair
// must fail verification and leave nothing behind.
func TestVerificationComparesBytes(t *testing.T) {
	bad, good, out := pair(t, 2, dmgA, dmgB)
	before := treeSums(t, bad, good)
	wantBeside := besideOut(t, out)
	for _, c := range []struct {
		from     From
		elements bool
	}{{FromBad, false}, {FromGood, false}, {FromElements, true}} {
		t.Run(string(c.from), func(t *testing.T) {
			var target, flippedIn string
			flipped := -1
			h := &hooks{skipSpaceCheck: true, fault: func(op, path string) error {
				if op == "sync" && flipped < 0 && strings.HasSuffix(path, ".safetensors") {
					if f, err := formats.ReadFileHeader(path, ""); err == nil && f.Header != nil {
						for _, ti := range f.Header.Tensors {
							if ti.Name == target {
								flipped, flippedIn = flipMantissaBit(t, path, target), path
							}
						}
					}
				}
				return nil
			}}
			p, err := NewPlan(context.Background(), Options{Bad: bad, Good: good, Out: out, Version: "v", ChunkBytes: 512, Elements: c.elements, hooks: h})
			if err != nil {
				t.Fatal(err)
			}
			for _, tp := range p.Tensors {
				if tp.From == c.from && tp.DType == formats.BF16 && tp.Bytes >= 64 && target == "" {
					target = tp.Name
				}
			}
			if target == "" {
				t.Fatalf("no BF16 tensor from %s in the plan", c.from)
			}
			rep, err := p.Execute(context.Background())
			if flipped < 0 {
				t.Fatalf("the fault hook never saw %s", target)
			}
			if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), target) || !strings.Contains(err.Error(), "bytes") {
				t.Fatalf("element %d of %s flipped in %s: error %v, want a verification failure naming its bytes", flipped, target, flippedIn, err)
			}
			if rep == nil || rep.Written {
				t.Fatal("report says written")
			}
			if _, serr := os.Lstat(out); serr == nil {
				t.Fatal("OUT exists")
			}
			if got := besideOut(t, out); fmt.Sprint(got) != fmt.Sprint(wantBeside) {
				t.Fatalf("left beside OUT %v, want %v", got, wantBeside)
			}
		})
	}
	assertUnchanged(t, before, bad, good)
}
