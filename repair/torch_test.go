package repair

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ckpt-tool/ckpt/convert"
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/hostile"
	"github.com/ckpt-tool/ckpt/internal/testenv"
	st "github.com/nlpodyssey/safetensors"
)

// genTorchPair writes, with torch.save, a GOOD and a BAD checkpoint of a tiny
// Qwen2-named model as Hugging Face saved them before safetensors: sharded
// pytorch_model-0000N-of-00002.bin with pytorch_model.bin.index.json, a tied
// lm_head (in the embedding's shard, so the file holds one storage for both),
// down_proj weights saved as transposes (non-contiguous views), a bf16
// tensor, config.json and a real optimizer.pt beside them. BAD has non-finite
// values in a view, in the tied embedding and in the final norm. Also: the
// same state dicts as single .pt files, GOOD variants lacking a tensor or with
// another shape, and expected.json: the SHA-256 of every tensor's bytes in C
// order, as torch has them (tensor.contiguous()), for BAD and GOOD.
const genTorchPair = `
import torch, json, sys, os, hashlib
out = sys.argv[1]
H, FF, V, L = 8, 16, 32, 2
def model(seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)
    sd = {}
    emb = r(V, H)
    sd["model.embed_tokens.weight"] = emb
    for i in range(L):
        p = "model.layers.%d." % i
        sd[p + "self_attn.q_proj.weight"] = r(H, H)
        sd[p + "self_attn.q_proj.bias"] = r(H)
        sd[p + "mlp.up_proj.weight"] = r(FF, H).to(torch.bfloat16)
        sd[p + "mlp.down_proj.weight"] = r(FF, H).t()
        sd[p + "input_layernorm.weight"] = torch.ones(H) + r(H) * 0.01
    sd["model.norm.weight"] = torch.ones(H) + r(H) * 0.01
    sd["lm_head.weight"] = emb
    return sd
def sha(t):
    return hashlib.sha256(t.contiguous().flatten().view(torch.uint8).numpy().tobytes()).hexdigest()
def save_dir(sd, d):
    os.makedirs(d)
    first = [n for n in sd if n.startswith("model.embed") or n.startswith("lm_head") or n.startswith("model.layers.0.")]
    shards = {"pytorch_model-00001-of-00002.bin": first,
              "pytorch_model-00002-of-00002.bin": [n for n in sd if n not in first]}
    wm = {}
    for fn, names in shards.items():
        torch.save({n: sd[n] for n in names}, os.path.join(d, fn))
        for n in names:
            wm[n] = fn
    json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, open(os.path.join(d, "pytorch_model.bin.index.json"), "w"))
    json.dump({"model_type": "qwen2", "hidden_size": H, "tie_word_embeddings": True}, open(os.path.join(d, "config.json"), "w"))
    params = [p for n, p in sd.items() if n != "lm_head.weight"]
    opt = {"state": {i: {"step": torch.tensor(3.0), "exp_avg": torch.zeros_like(p, dtype=torch.float32), "exp_avg_sq": torch.zeros_like(p, dtype=torch.float32)} for i, p in enumerate(params)},
           "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "params": list(range(len(params)))}]}
    torch.save(opt, os.path.join(d, "optimizer.pt"))
    json.dump({"global_step": 3}, open(os.path.join(d, "trainer_state.json"), "w"))
good, bad = model(1), model(2)
bad["model.layers.1.mlp.down_proj.weight"][0, 3] = float("nan")
bad["model.layers.1.mlp.down_proj.weight"][2, 5] = float("nan")
bad["model.embed_tokens.weight"][2, 1] = float("inf")
bad["model.norm.weight"][0] = float("nan")
save_dir(good, os.path.join(out, "good"))
save_dir(bad, os.path.join(out, "bad"))
torch.save(good, os.path.join(out, "good.pt"))
torch.save(bad, os.path.join(out, "bad.pt"))
missing = dict(good); del missing["model.norm.weight"]
os.makedirs(os.path.join(out, "good-missing")); torch.save(missing, os.path.join(out, "good-missing", "pytorch_model.bin"))
shaped = dict(good); shaped["model.norm.weight"] = torch.ones(H + 1)
os.makedirs(os.path.join(out, "good-shape")); torch.save(shaped, os.path.join(out, "good-shape", "pytorch_model.bin"))
json.dump({"good": {n: sha(t) for n, t in good.items()}, "bad": {n: sha(t) for n, t in bad.items()},
           "view_good": good["model.layers.1.mlp.down_proj.weight"][2, 5].item()},
          open(os.path.join(out, "expected.json"), "w"))
`

// The tensors genTorchPair damages in BAD, the view among them, and the tied pair.
var (
	torchDamaged = []string{"model.layers.1.mlp.down_proj.weight", "model.embed_tokens.weight", "model.norm.weight"}
	torchView    = "model.layers.1.mlp.down_proj.weight"
)

type torchExpected struct {
	Good, Bad map[string]string
	ViewGood  float64 `json:"view_good"`
}

// The pair is generated once per test binary (torch starts slowly) and only
// read by the tests, which write their outputs into directories of their own.
var torchFixture struct {
	once sync.Once
	dir  string
	want torchExpected
	err  error
}

func genTorch(t *testing.T) (dir string, want torchExpected) {
	t.Helper()
	f := &torchFixture
	f.once.Do(func() {
		py := testenv.TorchPython(t) // stops this test when torch is missing (and the others below)
		if f.dir, f.err = os.MkdirTemp("", "ckpt-repair-torch-"); f.err != nil {
			return
		}
		if out, err := exec.Command(py, "-c", genTorchPair, f.dir).CombinedOutput(); err != nil {
			f.err = fmt.Errorf("torch.save: %v\n%s", err, out)
			return
		}
		raw, err := os.ReadFile(filepath.Join(f.dir, "expected.json"))
		if err == nil {
			err = json.Unmarshal(raw, &f.want)
		}
		f.err = err
	})
	if f.err != nil {
		t.Fatal(f.err)
	}
	if f.dir == "" {
		testenv.TorchPython(t)
		t.Fatal("the torch fixture was not written")
	}
	return f.dir, f.want
}

// removeTorchFixture deletes the generated pair (from TestMain).
func removeTorchFixture() {
	if torchFixture.dir != "" {
		os.RemoveAll(torchFixture.dir)
	}
}

// checkTorchOutput reads every file of OUT with nlpodyssey/safetensors and
// requires each tensor's bytes to be the C-order bytes torch has for it in
// the source it should come from (GOOD for the damaged tensors, else BAD);
// the tied pair must be written once and listed in __metadata__.
func checkTorchOutput(t *testing.T, out string, want torchExpected, fromGood map[string]bool) {
	t.Helper()
	scanHealthy(t, out)
	c, err := formats.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.AllProblems() {
		t.Errorf("output has a format problem: %v", p.Err)
	}
	seen := map[string]bool{}
	tied := map[string]string{}
	for _, f := range c.Files {
		if f.Format() != formats.ContainerSafetensors {
			t.Fatalf("%s is %s, not safetensors", f.Path, f.Format())
		}
		md := f.Header.Metadata
		if md["format"] != "pt" {
			t.Errorf("%s: metadata format %q, want \"pt\" (transformers requires it)", f.Name, md["format"])
		}
		if s, ok := md[formats.TiedTensorsKey]; ok {
			if err := json.Unmarshal([]byte(s), &tied); err != nil {
				t.Errorf("%s: %s is not a JSON object: %v", f.Name, formats.TiedTensorsKey, err)
			}
		}
		if _, ok, err := ReadProvenance(md); !ok || err != nil {
			t.Errorf("%s: provenance missing (%v)", f.Name, err)
		}
		data, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := st.Deserialize(data)
		if err != nil {
			t.Fatalf("independent reader rejects %s: %v", f.Path, err)
		}
		for _, nt := range s.Tensors() {
			seen[nt.Name] = true
			src, exp := "BAD", want.Bad[nt.Name]
			if fromGood[nt.Name] {
				src, exp = "GOOD", want.Good[nt.Name]
			}
			sum := sha256.Sum256(nt.TensorView.Data())
			if hex.EncodeToString(sum[:]) != exp {
				t.Errorf("%s in %s: not the bytes torch has in %s", nt.Name, f.Name, src)
			}
		}
	}
	// The tied pair: one written, the other listed as tied to it.
	a, b := "model.embed_tokens.weight", "lm_head.weight"
	if seen[b] {
		a, b = b, a
	}
	if !seen[a] || seen[b] || tied[b] != a {
		t.Errorf("tied weights: written %v, %s = %v", slices.Sorted(mapKeys(seen)), formats.TiedTensorsKey, tied)
	}
	if len(seen)+1 != len(want.Bad) {
		t.Errorf("output holds %d tensors (+1 tied), BAD %d", len(seen), len(want.Bad))
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func damagedSet() map[string]bool {
	m := map[string]bool{}
	for _, n := range torchDamaged {
		m[n] = true
	}
	return m
}

// A sharded pytorch_model-*.bin BAD repaired from a .bin GOOD: safetensors
// shards named as save_pretrained names them, an index, the damaged tensors
// (a view, the tied embedding, the final norm) GOOD's bytes, the rest BAD's,
// verified; training state neither scanned as weights nor copied.
func TestRepairTorchSharded(t *testing.T) {
	dir, want := genTorch(t)
	bad, good, out := filepath.Join(dir, "bad"), filepath.Join(dir, "good"), filepath.Join(t.TempDir(), "out")
	rep, err := run(t, Options{Bad: bad, Good: good, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Written || !rep.Verification.Healthy || rep.Plan.Replaced != 3 || rep.Plan.TiedTensors != 1 {
		t.Fatalf("written %v, verification %+v, replaced %d, tied %d", rep.Written, rep.Verification, rep.Plan.Replaced, rep.Plan.TiedTensors)
	}
	checkTorchOutput(t, out, want, damagedSet())
	c, _ := formats.Open(out)
	var names []string
	for _, f := range c.Files {
		names = append(names, f.Name)
	}
	if c.Layout != formats.LayoutSharded || strings.Join(names, ",") != "model-00001-of-00002.safetensors,model-00002-of-00002.safetensors" {
		t.Errorf("output layout %s, files %v", c.Layout, names)
	}
	entries, _ := os.ReadDir(out)
	var listed []string
	for _, e := range entries {
		listed = append(listed, e.Name())
	}
	if strings.Join(listed, ",") != "config.json,model-00001-of-00002.safetensors,model-00002-of-00002.safetensors,model.safetensors.index.json" {
		t.Errorf("OUT holds %v", listed)
	}
	if v := c.Tensor(torchView); v == nil || !v.Contiguous() || !slices.Equal(v.Shape, []uint64{8, 16}) {
		t.Errorf("the view is written as %+v", v)
	}
	if rep.Plan.ResumeAdvice == "" {
		t.Error("no advice on resuming although BAD has optimizer.pt")
	}
}

// Mixed pairs: a .bin BAD with a safetensors GOOD, and the other way round.
func TestRepairTorchMixed(t *testing.T) {
	dir, want := genTorch(t)
	tmp := t.TempDir()
	goodST := filepath.Join(tmp, "good-st")
	if _, err := convert.Convert(filepath.Join(dir, "good"), goodST, convert.Options{CloneTied: true}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out1")
	if _, err := run(t, Options{Bad: filepath.Join(dir, "bad"), Good: goodST, Out: out}); err != nil {
		t.Fatal(err)
	}
	checkTorchOutput(t, out, want, damagedSet())

	badST := filepath.Join(tmp, "bad-st.safetensors")
	if _, err := convert.Convert(filepath.Join(dir, "bad.pt"), badST, convert.Options{CloneTied: true}); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(tmp, "out2.safetensors")
	rep, err := run(t, Options{Bad: badST, Good: filepath.Join(dir, "good.pt"), Out: out2})
	if err != nil {
		t.Fatal(err)
	}
	// BAD is safetensors with lm_head cloned: it is damaged too, and comes from GOOD's tied copy.
	if rep.Plan.Replaced != 4 {
		t.Errorf("replaced %d tensors, want 4 (lm_head is damaged in BAD's clone)", rep.Plan.Replaced)
	}
	scanHealthy(t, out2)
	for name, tb := range tensorBytes(t, out2) {
		src := want.Bad
		if damagedSet()[name] || name == "lm_head.weight" {
			src = want.Good
		}
		if sum := sha256.Sum256(tb); hex.EncodeToString(sum[:]) != src[name] {
			t.Errorf("%s: not its source's bytes", name)
		}
	}
}

// A single .pt file BAD and GOOD: OUT is one .safetensors file; OUT must say
// so by its name.
func TestRepairTorchSingleFile(t *testing.T) {
	dir, want := genTorch(t)
	bad, good := filepath.Join(dir, "bad.pt"), filepath.Join(dir, "good.pt")
	tmp := t.TempDir()
	if _, err := run(t, Options{Bad: bad, Good: good, Out: filepath.Join(tmp, "fixed.pt")}); !errors.Is(err, ErrOptions) {
		t.Errorf("OUT fixed.pt: got %v, want ErrOptions", err)
	}
	out := filepath.Join(tmp, "fixed.safetensors")
	if _, err := run(t, Options{Bad: bad, Good: good, Out: out}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("OUT is not a regular file: %v", err)
	}
	checkTorchOutput(t, out, want, damagedSet())
}

// An element repair through views: only BAD's non-finite elements of the
// transposed tensor are GOOD's, at the same (logical) positions.
func TestRepairTorchElements(t *testing.T) {
	dir, want := genTorch(t)
	out := filepath.Join(t.TempDir(), "elements.safetensors")
	rep, err := run(t, Options{Bad: filepath.Join(dir, "bad.pt"), Good: filepath.Join(dir, "good.pt"), Out: out, Elements: true})
	if err != nil {
		t.Fatal(err)
	}
	scanHealthy(t, out)
	for _, tp := range rep.Plan.Tensors {
		if tp.Name == torchView && (tp.From != FromElements || tp.ElementsReplaced != 2) {
			t.Errorf("view: from %s, %d elements replaced", tp.From, tp.ElementsReplaced)
		}
	}
	// Element [2, 5] of the [8, 16] float32 tensor.
	b := tensorBytes(t, out)[torchView]
	got := math.Float32frombits(binary.LittleEndian.Uint32(b[4*(2*16+5):]))
	if float64(got) != float64(float32(want.ViewGood)) {
		t.Errorf("element [2 5] is %v, GOOD's is %v", got, want.ViewGood)
	}
}

// What GOOD cannot supply is refused, naming the tensor; a pickle that names
// code is never a source; nothing is written.
func TestRepairTorchRefusals(t *testing.T) {
	dir, _ := genTorch(t)
	bad := filepath.Join(dir, "bad.pt")
	cases := []struct {
		good string
		kind error
		text string
	}{
		{filepath.Join(dir, "good-missing"), ErrIncompatible, `tensor "model.norm.weight" (F32 [8]) is not in GOOD`},
		{filepath.Join(dir, "good-shape"), ErrIncompatible, `tensor "model.norm.weight" differs: BAD has F32 [8], GOOD has F32 [9]`},
	}
	tmp := t.TempDir()
	evil := filepath.Join(tmp, "evil.pt")
	if err := hostile.WriteTorchMalicious(evil, filepath.Join(tmp, "evil-legacy.pt"), "touch "+filepath.Join(tmp, "pwned")); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		good string
		kind error
		text string
	}{evil, ErrPickleCode, "posix.system"})
	for _, c := range cases {
		out := filepath.Join(tmp, "out.safetensors")
		_, err := run(t, Options{Bad: bad, Good: c.good, Out: out})
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("GOOD %s: got %v, want %v naming %q", filepath.Base(c.good), err, c.kind, c.text)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("GOOD %s: OUT was written", filepath.Base(c.good))
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "pwned")); err == nil {
		t.Error("the malicious pickle's payload ran")
	}
}

// An interruption (the context a signal cancels) in the middle of writing a
// PyTorch BAD's output leaves nothing beside OUT and the inputs unchanged.
func TestRepairTorchInterrupted(t *testing.T) {
	dir, _ := genTorch(t)
	bad, good := filepath.Join(dir, "bad"), filepath.Join(dir, "good")
	before := treeSums(t, bad, good)
	out := filepath.Join(t.TempDir(), "out")
	for _, stopAfter := range []int64{1, 700, 3000} {
		ctx, cancel := context.WithCancel(context.Background())
		var written int64
		progress := func(p Phase, total int64) func(int64) {
			if p != PhaseWrite {
				return nil
			}
			return func(n int64) {
				if written += n; written >= stopAfter {
					cancel()
				}
			}
		}
		_, err := Run(ctx, Options{Bad: bad, Good: good, Out: out, ChunkBytes: 256, Progress: progress, Version: "test-version"})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("stopped after %d bytes: got %v, want context.Canceled", stopAfter, err)
		}
		if left := besideOut(t, out); len(left) != 0 {
			t.Errorf("stopped after %d bytes: left beside OUT: %v", stopAfter, left)
		}
	}
	assertUnchanged(t, before, bad, good)
}
