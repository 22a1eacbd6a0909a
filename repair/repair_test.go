package repair

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
	st "github.com/nlpodyssey/safetensors"
)

// run repairs with small chunks (many per tensor, even in small fixtures) and
// checks that the inputs are unchanged afterwards, whatever the outcome.
func run(t testing.TB, o Options) (*Report, error) {
	t.Helper()
	if o.Version == "" {
		o.Version = "test-version"
	}
	o.ChunkBytes = 256
	var roots []string
	for _, p := range []string{o.Bad, o.Good} {
		if _, err := os.Stat(p); err == nil {
			roots = append(roots, p)
		}
	}
	before := treeSums(t, roots...)
	rep, err := Run(context.Background(), o)
	assertUnchanged(t, before, roots...)
	return rep, err
}

const (
	dmgA = "model.layers.1.mlp.down_proj.weight"
	dmgB = "model.norm.weight"
)

func TestRepairTensorsSharded(t *testing.T) {
	bad, good, out := pair(t, 2, dmgA, dmgB)
	before := treeSums(t, bad, good)
	rep, err := run(t, Options{Bad: bad, Good: good, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, before, bad, good)
	if !rep.Written || rep.Verification == nil || !rep.Verification.Healthy {
		t.Fatalf("report: written %v, verification %+v", rep.Written, rep.Verification)
	}
	scanHealthy(t, out)

	badB, goodB, outB := tensorBytes(t, bad), tensorBytes(t, good), tensorBytes(t, out)
	if len(outB) != len(badB) {
		t.Fatalf("output has %d tensors, BAD %d", len(outB), len(badB))
	}
	for name, b := range outB {
		want, from := badB[name], "BAD"
		if name == dmgA || name == dmgB {
			want, from = goodB[name], "GOOD"
		}
		if !sameBytes(b, want) {
			t.Errorf("tensor %s is not byte-identical to %s's", name, from)
		}
	}
	if rep.Plan.Replaced != 2 || rep.Plan.Kept != len(badB)-2 {
		t.Errorf("plan replaced %d, kept %d; want 2 and %d", rep.Plan.Replaced, rep.Plan.Kept, len(badB)-2)
	}

	// Same layout: the same shard names, each with the same tensors; an index
	// whose total_size is the sum of the tensor bytes.
	bc, _ := formats.Open(bad)
	bc = bc.Weights() // BAD's training state (optimizer.pt, ...) is no part of the layout
	oc, _ := formats.Open(out)
	if oc.Layout != formats.LayoutSharded || len(oc.Files) != len(bc.Files) {
		t.Fatalf("output layout %s with %d files, BAD sharded with %d", oc.Layout, len(oc.Files), len(bc.Files))
	}
	for i, f := range bc.Files {
		if oc.Files[i].Name != f.Name || len(oc.Files[i].Header.Tensors) != len(f.Header.Tensors) {
			t.Errorf("file %d: output %s with %d tensors, BAD %s with %d", i, oc.Files[i].Name, len(oc.Files[i].Header.Tensors), f.Name, len(f.Header.Tensors))
		}
		for _, tn := range f.Header.Tensors {
			if oc.Index.WeightMap[tn.Name] != f.Name {
				t.Errorf("index maps %s to %q, BAD has it in %q", tn.Name, oc.Index.WeightMap[tn.Name], f.Name)
			}
		}
	}
	var total uint64
	for _, tn := range oc.Tensors {
		total += tn.Bytes()
	}
	if ts, ok := oc.Index.TotalSize(); !ok || ts != float64(total) {
		t.Errorf("index total_size %v (present %v), tensors hold %d bytes", ts, ok, total)
	}
	for _, p := range oc.AllProblems() {
		t.Errorf("output has a format problem: %v", p.Err)
	}

	// Non-weight files copied, training state not.
	for _, name := range []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		a, err1 := os.ReadFile(filepath.Join(bad, name))
		b, err2 := os.ReadFile(filepath.Join(out, name))
		if err1 != nil || err2 != nil || string(a) != string(b) {
			t.Errorf("%s not copied faithfully (%v, %v)", name, err1, err2)
		}
	}
	for _, name := range []string{"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "training_args.bin"} {
		if _, err := os.Stat(filepath.Join(out, name)); err == nil {
			t.Errorf("%s was copied; training state must not be", name)
		}
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("OUT's mode: %v (%v), want drwxr-xr-x", st.Mode(), err)
	}
	if rep.Plan.ResumeAdvice == "" {
		t.Error("no advice on resuming training although BAD has optimizer state")
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	for _, e := range entries {
		if e.Name() != "checkpoint-100" && e.Name() != "checkpoint-200" && e.Name() != "repaired" {
			t.Errorf("left behind beside OUT: %s", e.Name())
		}
	}
	checkIndependentReader(t, out, badB, goodB, map[string]bool{dmgA: true, dmgB: true})
	checkProvenance(t, out, bad, good, rep, map[string]bool{dmgA: true, dmgB: true})
}

// checkIndependentReader reads every output file with nlpodyssey/safetensors
// and compares each tensor with the source it should come from.
func checkIndependentReader(t *testing.T, out string, badB, goodB map[string][]byte, fromGood map[string]bool) {
	t.Helper()
	c, err := formats.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range c.Files {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := st.Deserialize(data)
		if err != nil {
			t.Fatalf("independent reader rejects %s: %v", f.Path, err)
		}
		for _, nt := range s.Tensors() {
			seen++
			want := badB[nt.Name]
			if fromGood[nt.Name] {
				want = goodB[nt.Name]
			}
			if !sameBytes(nt.TensorView.Data(), want) {
				t.Errorf("independent reader: %s in %s differs from its source", nt.Name, f.Name)
			}
		}
	}
	if seen != len(badB) {
		t.Errorf("independent reader saw %d tensors, want %d", seen, len(badB))
	}
}

// readTensor reads a tensor's bytes from its file.
func readTensor(t *testing.T, tn *formats.Tensor) []byte {
	t.Helper()
	data := make([]byte, tn.Length())
	f, err := os.Open(tn.File.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(data, tn.Offset); err != nil {
		t.Fatal(err)
	}
	return data
}

// checkProvenance reads the provenance entry of every output file and checks it
// against the files on disk.
func checkProvenance(t *testing.T, out, bad, good string, rep *Report, fromGood map[string]bool) {
	t.Helper()
	c, err := formats.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := formats.Open(bad)
	if err != nil {
		t.Fatal(err)
	}
	bc = bc.Weights() // the weights: training state is neither read nor written
	gc, err := formats.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(bc.Files) != len(c.Files) {
		t.Fatalf("output has %d files, BAD %d", len(c.Files), len(bc.Files))
	}
	var replaced []string
	for i, f := range c.Files {
		pr, ok, err := ReadProvenance(f.Header.Metadata)
		if err != nil || !ok {
			t.Fatalf("%s: provenance missing or unreadable (%v)", f.Name, err)
		}
		if pr.Tool != "ckpt" || pr.Version != "test-version" || pr.Strategy != rep.Plan.Strategy || pr.File != f.Name {
			t.Errorf("%s: provenance %+v", f.Name, pr)
		}
		// BAD's metadata is kept: the output's is BAD's plus the provenance entry.
		md := maps.Clone(f.Header.Metadata)
		delete(md, ProvenanceKey)
		if bmd := bc.Files[i].Header.Metadata; !maps.Equal(md, bmd) && (len(md) != 0 || len(bmd) != 0) {
			t.Errorf("%s: metadata %v, BAD's was %v", f.Name, md, bmd)
		}
		for _, in := range pr.Inputs {
			data, err := os.ReadFile(in.Path)
			if err != nil {
				t.Fatalf("provenance names %s: %v", in.Path, err)
			}
			sum := sha256.Sum256(data)
			if in.Bytes != int64(len(data)) {
				t.Errorf("provenance records %s as %d bytes; it has %d", in.Path, in.Bytes, len(data))
			}
			switch weights := strings.HasSuffix(in.Path, ".safetensors"); {
			case in.Role == "good" && weights:
				if in.SHA256 != "" {
					t.Errorf("GOOD's weight file %s has a whole-file digest; only its tensors' are recorded", in.Path)
				}
			case in.SHA256 != hex.EncodeToString(sum[:]):
				t.Errorf("provenance records %s as %s; it is %x", in.Path, in.SHA256, sum)
			}
		}
		if len(pr.Inputs) != len(rep.Inputs) {
			t.Errorf("provenance lists %d inputs, the report %d", len(pr.Inputs), len(rep.Inputs))
		}
		kept := 0
		for _, tn := range f.Header.Tensors {
			if !fromGood[tn.Name] {
				kept++
			}
		}
		if pr.FromBad != kept {
			t.Errorf("%s: provenance says %d tensors kept from BAD, the file has %d", f.Name, pr.FromBad, kept)
		}
		for _, r := range pr.FromGood {
			if r.Why == "" || r.Source == "" {
				t.Errorf("%s: provenance entry for %s lacks why or source: %+v", f.Name, r.Name, r)
			}
			// The digest is that of the bytes written (for a whole tensor,
			// GOOD's bytes of it).
			if sum := sha256.Sum256(readTensor(t, c.Tensor(r.Name))); r.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: provenance records %s as %s; its bytes in OUT hash to %x", f.Name, r.Name, r.SHA256, sum)
			}
			if sum := sha256.Sum256(readTensor(t, gc.Tensor(r.Name))); r.Mode == FromGood && r.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: provenance records %s from GOOD as %s; GOOD's bytes hash to %x", f.Name, r.Name, r.SHA256, sum)
			}
			replaced = append(replaced, r.Name)
		}
	}
	var want []string
	for n := range fromGood {
		want = append(want, n)
	}
	sort.Strings(want)
	sort.Strings(replaced)
	if len(replaced) != len(want) {
		t.Fatalf("provenance lists %v as from GOOD, want %v", replaced, want)
	}
	for i := range want {
		if replaced[i] != want[i] {
			t.Errorf("provenance lists %v as from GOOD, want %v", replaced, want)
		}
	}
}

func TestRepairSingleFileLayout(t *testing.T) {
	bad, good, _ := pair(t, 1, dmgA)
	out := filepath.Join(t.TempDir(), "fixed.safetensors")
	badFile, goodFile := filepath.Join(bad, "model.safetensors"), filepath.Join(good, "model.safetensors")
	before := treeSums(t, bad, good)
	rep, err := run(t, Options{Bad: badFile, Good: goodFile, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, before, bad, good)
	if st, err := os.Stat(out); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("OUT is not a regular file: %v", err)
	}
	scanHealthy(t, out)
	badB, goodB := tensorBytes(t, badFile), tensorBytes(t, goodFile)
	checkIndependentReader(t, out, badB, goodB, map[string]bool{dmgA: true})
	checkProvenance(t, out, badFile, goodFile, rep, map[string]bool{dmgA: true})
	if len(rep.Plan.Copy) != 0 {
		t.Errorf("a single-file repair copied %v", rep.Plan.Copy)
	}
}

func TestRepairLayers(t *testing.T) {
	bad, good, out := pair(t, 2, dmgA, dmgB)
	rep, err := run(t, Options{Bad: bad, Good: good, Out: out, Strategy: Layers})
	if err != nil {
		t.Fatal(err)
	}
	scanHealthy(t, out)
	fromGood := map[string]bool{dmgB: true}
	for _, s := range small.Specs(formats.BF16) {
		if len(s.Name) > len("model.layers.1.") && s.Name[:len("model.layers.1.")] == "model.layers.1." {
			fromGood[s.Name] = true
		}
	}
	if rep.Plan.Replaced != len(fromGood) {
		t.Errorf("layers strategy replaced %d tensors, want %d (block 1 and the final norm)", rep.Plan.Replaced, len(fromGood))
	}
	checkIndependentReader(t, out, tensorBytes(t, bad), tensorBytes(t, good), fromGood)
	checkProvenance(t, out, bad, good, rep, fromGood)
}

func TestRepairAll(t *testing.T) {
	bad, good, out := pair(t, 2, dmgA)
	rep, err := run(t, Options{Bad: bad, Good: good, Out: out, Strategy: All})
	if err != nil {
		t.Fatal(err)
	}
	scanHealthy(t, out)
	fromGood := map[string]bool{}
	for _, s := range small.Specs(formats.BF16) {
		fromGood[s.Name] = true
	}
	checkIndependentReader(t, out, tensorBytes(t, bad), tensorBytes(t, good), fromGood)
	checkProvenance(t, out, bad, good, rep, fromGood)
}

func TestRepairElements(t *testing.T) {
	bad, good, out := pair(t, 2, dmgA, dmgB)
	rep, err := run(t, Options{Bad: bad, Good: good, Out: out, Elements: true})
	if err != nil {
		t.Fatal(err)
	}
	scanHealthy(t, out)
	badB, goodB, outB := tensorBytes(t, bad), tensorBytes(t, good), tensorBytes(t, out)
	// Elements damaged by the fixture: dmgA at 0, 3, 5; dmgB at 1 (BF16).
	replacedAt := map[string][]int{dmgA: {0, 3, 5}, dmgB: {1}}
	for name, b := range outB {
		at := map[int]bool{}
		for _, i := range replacedAt[name] {
			at[i] = true
		}
		for i := 0; i < len(b)/2; i++ {
			want := badB[name][2*i : 2*i+2]
			if at[i] {
				want = goodB[name][2*i : 2*i+2]
			}
			if !sameBytes(b[2*i:2*i+2], want) {
				t.Fatalf("%s element %d: %x, want %x", name, i, b[2*i:2*i+2], want)
			}
		}
	}
	for _, tp := range rep.Plan.Tensors {
		if n := uint64(len(replacedAt[tp.Name])); tp.ElementsReplaced != n {
			t.Errorf("%s: %d elements replaced, want %d", tp.Name, tp.ElementsReplaced, n)
		}
	}
	if len(rep.Plan.Warnings) == 0 {
		t.Error("no warning that an element repair mixes two states")
	}
	checkProvenance(t, out, bad, good, rep, map[string]bool{dmgA: true, dmgB: true})
}

func TestRepairNothingDamagedCopiesBad(t *testing.T) {
	bad, good, out := pair(t, 2)
	rep, err := run(t, Options{Bad: bad, Good: good, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Plan.Replaced != 0 || len(rep.Plan.Warnings) == 0 {
		t.Errorf("healthy BAD: replaced %d, warnings %v", rep.Plan.Replaced, rep.Plan.Warnings)
	}
	checkIndependentReader(t, out, tensorBytes(t, bad), nil, nil)
}

func TestRefusals(t *testing.T) {
	bad, good, out := pair(t, 2, dmgA)
	before := treeSums(t, bad, good)
	other := filepath.Join(t.TempDir(), "other")
	makeCheckpoint(t, other, otherArch(), 1, 1)
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		o    Options
		want error
	}{
		{"out exists", Options{Bad: bad, Good: good, Out: out}, ErrOutputExists},
		{"out is BAD", Options{Bad: bad, Good: good, Out: bad, Force: true}, ErrOutputIsInput},
		{"out is GOOD", Options{Bad: bad, Good: good, Out: good + "/", Force: true}, ErrOutputIsInput},
		{"out inside BAD", Options{Bad: bad, Good: good, Out: filepath.Join(bad, "fixed")}, ErrOutputIsInput},
		{"out inside GOOD, not yet existing parents", Options{Bad: bad, Good: good, Out: filepath.Join(good, "a", "b")}, ErrOutputIsInput},
		{"out contains the inputs", Options{Bad: bad, Good: good, Out: filepath.Dir(bad), Force: true}, ErrOutputIsInput},
		{"out is BAD's shard", Options{Bad: filepath.Join(bad, "model-00001-of-00002.safetensors"), Good: filepath.Join(good, "model-00001-of-00002.safetensors"),
			Out: filepath.Join(bad, "model-00001-of-00002.safetensors"), Force: true}, ErrOutputIsInput},
		{"same input", Options{Bad: bad, Good: bad + "/.", Out: out + "2"}, ErrSameInput},
		{"shapes differ", Options{Bad: bad, Good: other, Out: out + "3"}, ErrIncompatible},
		{"elements with layers", Options{Bad: bad, Good: good, Out: out + "4", Elements: true, Strategy: Layers}, ErrOptions},
		{"unknown strategy", Options{Bad: bad, Good: good, Out: out + "5", Strategy: "some"}, ErrOptions},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, c.o)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
	assertUnchanged(t, before, bad, good)
	for _, suffix := range []string{"2", "3", "4", "5"} {
		if _, err := os.Stat(out + suffix); err == nil {
			t.Errorf("a refused repair created %s", out+suffix)
		}
	}
}

// otherArch is small with a different hidden size: every matrix differs.
func otherArch() synth.Arch {
	a := small
	a.Name, a.Hidden = "other", 32
	return a
}

func TestRefuseWhenGoodIsDamagedToo(t *testing.T) {
	bad, good, out := pair(t, 2, dmgA)
	damage(t, good, dmgA)
	before := treeSums(t, bad, good)
	rep, err := run(t, Options{Bad: bad, Good: good, Out: out})
	if !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("error %v, want ErrUnhealthy", err)
	}
	if rep == nil || rep.Written || len(rep.Plan.Unhealthy) == 0 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("OUT written although the result would be unhealthy")
	}
	assertUnchanged(t, before, bad, good)
}

func TestForceReplacesAtomically(t *testing.T) {
	bad, good, out := pair(t, 2, dmgA)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "stale.txt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, Options{Bad: bad, Good: good, Out: out, Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "stale.txt")); err == nil {
		t.Error("the old OUT's content survived --force")
	}
	scanHealthy(t, out)
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("beside OUT after --force: %v", names)
	}
}

func TestReportJSON(t *testing.T) {
	bad, good, out := pair(t, 2, dmgA)
	rep, err := run(t, Options{Bad: bad, Good: good, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Plan struct {
			Tensors []struct {
				Name, From, Why string
			}
		}
		Verification struct{ Healthy bool }
		Written      bool
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if !doc.Written || !doc.Verification.Healthy {
		t.Errorf("JSON report: %s", data)
	}
	found := false
	for _, tp := range doc.Plan.Tensors {
		if tp.Name == dmgA {
			found = tp.From == "good" && tp.Why != ""
		}
	}
	if !found {
		t.Errorf("JSON plan does not say %s comes from GOOD and why", dmgA)
	}
}

// TestKernelAndBufferedCopiesAgree writes the same repair with copy_file_range
// and through a buffer: the outputs are byte-identical.
func TestKernelAndBufferedCopiesAgree(t *testing.T) {
	bad, good, _ := pair(t, 2, dmgA, dmgB)
	a, b := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "out")
	if _, err := run(t, Options{Bad: bad, Good: good, Out: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, Options{Bad: bad, Good: good, Out: b, hooks: &hooks{buffered: true}}); err != nil {
		t.Fatal(err)
	}
	ta, tb := contentTree(t, a), contentTree(t, b)
	if !sameContent(ta, tb) {
		t.Errorf("kernel copy and buffered copy differ:\n%v\n%v", ta, tb)
	}
}

// TestRepairTruncatedShard: a shard cut short (an interrupted save) keeps its
// header, so its layout is known; the tensors the cut reaches are taken from
// GOOD, the intact ones kept.
func TestRepairTruncatedShard(t *testing.T) {
	bad, good, out := pair(t, 2)
	shard := filepath.Join(bad, "model-00002-of-00002.safetensors")
	c, err := formats.Open(bad)
	if err != nil {
		t.Fatal(err)
	}
	var last *formats.Tensor
	for _, tn := range c.Tensors {
		if tn.File.Path == shard {
			last = tn
		}
	}
	badB := tensorBytes(t, bad) // before the cut
	if err := synth.Truncate(shard, 10); err != nil {
		t.Fatal(err)
	}
	rep, err := run(t, Options{Bad: bad, Good: good, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	scanHealthy(t, out)
	fromGood := map[string]bool{}
	for _, tp := range rep.Plan.Tensors {
		if tp.From == FromGood {
			fromGood[tp.Name] = true
		}
	}
	if len(fromGood) != 1 || !fromGood[last.Name] {
		t.Fatalf("from GOOD: %v; want only the tensor the cut reaches, %s", fromGood, last.Name)
	}
	checkIndependentReader(t, out, badB, tensorBytes(t, good), fromGood)
}

// TestRefuseUnreadableLayout: a shard that is missing, or a Git LFS pointer,
// leaves BAD's layout unknown: refused, nothing written.
func TestRefuseUnreadableLayout(t *testing.T) {
	for _, damageIt := range []func(bad string) error{
		func(bad string) error { _, err := synth.RemoveShard(bad, 2); return err },
		func(bad string) error {
			return synth.WriteLFSPointer(filepath.Join(bad, "model-00001-of-00002.safetensors"))
		},
	} {
		bad, good, out := pair(t, 2)
		if err := damageIt(bad); err != nil {
			t.Fatal(err)
		}
		if _, err := run(t, Options{Bad: bad, Good: good, Out: out}); !errors.Is(err, ErrLayoutUnreadable) {
			t.Errorf("error %v, want ErrLayoutUnreadable", err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("OUT written for an unreadable BAD")
		}
	}
}
