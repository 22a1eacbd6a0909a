package inspect_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// genTorch writes checkpoints with torch.save and, for each, what torch
// computes for every tensor (in float64): truth.json in dir.
const genTorch = `
import torch, json, sys, os, math
out = sys.argv[1]
torch.manual_seed(0)
def floats(dt, n=64):
    x = torch.randn(n, dtype=torch.float64) * 3
    x[3] = float("nan"); x[5] = float("inf"); x[7] = float("-inf"); x[9] = 0.0
    return x.to(dt)
sd = {}
for name, dt in [("f32", torch.float32), ("f64", torch.float64), ("f16", torch.float16), ("bf16", torch.bfloat16)]:
    sd[name] = floats(dt).reshape(8, 8)
for name, dt in [("i64", torch.int64), ("i32", torch.int32), ("i16", torch.int16), ("i8", torch.int8)]:
    sd[name] = torch.arange(-30, 30, dtype=dt).reshape(6, 10)
sd["u8"] = torch.arange(0, 200, dtype=torch.uint8)
sd["bool"] = torch.arange(0, 17) % 3 == 0
sd["c64"] = torch.complex(torch.randn(5), torch.randn(5))
sd["c64"][1] = complex(float("nan"), 1.0); sd["c64"][2] = complex(1.0, float("-inf")); sd["c64"][3] = complex(float("inf"), float("nan"))
sd["c128"] = torch.complex(torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64))
sd["scalar"] = torch.tensor(2.5)
sd["empty"] = torch.zeros(0, 4)
base = torch.randn(6, 5)
sd["view.t"] = base.t()
sd["view.step"] = base[:, ::2]
sd["view.expand"] = torch.randn(1, 4).expand(3, 4)
sd["view.offset"] = base[2:]
w = torch.randn(10, 4)
sd["tied.a"] = w
sd["tied.b"] = w
sd["nested"] = {"state": {0: {"exp_avg": torch.randn(3), "step": 7}}, "param_groups": [{"lr": 0.1, "params": [0]}]}
truth = {}
def describe(prefix, v):
    if isinstance(v, torch.Tensor):
        x = v.resolve_conj()
        if x.is_complex():
            # One element is one complex number: non-finite when either part
            # is, NaN first, then the real part's infinity, then the imaginary.
            p = torch.view_as_real(x).to(torch.float64).reshape(-1, 2)
            re, im = p[:, 0], p[:, 1]
            nan = torch.isnan(re) | torch.isnan(im)
            inf = ~nan & (torch.isinf(re) | torch.isinf(im))
            sign = torch.where(torch.isinf(re), re, im)
            ok = ~nan & ~inf
            fin = p[ok].flatten()
            n_nan, n_pos, n_neg, n_fin = int(nan.sum()), int((inf & (sign > 0)).sum()), int((inf & (sign < 0)).sum()), int(ok.sum())
        else:
            d = x.to(torch.float64).flatten()
            fin = d[torch.isfinite(d)]
            n_nan, n_pos, n_neg, n_fin = int(torch.isnan(d).sum()), int((d == math.inf).sum()), int((d == -math.inf).sum()), int(fin.numel())
        truth[prefix] = {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
            "nan": n_nan, "posinf": n_pos, "neginf": n_neg,
            "min": float(fin.min()) if fin.numel() else None, "max": float(fin.max()) if fin.numel() else None,
            "sum": float(fin.sum()), "finite": n_fin, "parts": 2 if x.is_complex() else 1,
            "contiguous": v.is_contiguous()}
    elif isinstance(v, dict):
        for k, x in v.items():
            describe((prefix + "." if prefix else "") + str(k), x)
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            describe((prefix + "." if prefix else "") + str(i), x)
describe("", sd)
torch.save(sd, os.path.join(out, "zip.pt"))
torch.save(sd, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)
# A sharded .bin checkpoint with its index.
sh = os.path.join(out, "sharded"); os.makedirs(sh)
names = ["f32", "i64", "tied.a", "tied.b", "view.t"]
shards = {"pytorch_model-00001-of-00002.bin": names[:2], "pytorch_model-00002-of-00002.bin": names[2:]}
wm = {}
for fn, ns in shards.items():
    torch.save({n: sd[n] for n in ns}, os.path.join(sh, fn))
    for n in ns: wm[n] = fn
json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, open(os.path.join(sh, "pytorch_model.bin.index.json"), "w"))
json.dump(truth, open(os.path.join(out, "truth.json"), "w"))
`

type genTruth struct {
	DType      string   `json:"dtype"`
	Shape      []uint64 `json:"shape"`
	NaN        uint64   `json:"nan"`
	PosInf     uint64   `json:"posinf"`
	NegInf     uint64   `json:"neginf"`
	Min        *float64 `json:"min"`
	Max        *float64 `json:"max"`
	Sum        float64  `json:"sum"`
	Finite     uint64   `json:"finite"`
	Contiguous bool     `json:"contiguous"`
	Parts      int      `json:"parts"` // 2 for a complex dtype: the statistics are over both parts
}

// Files written by torch.save (zip and legacy): every dtype torch 1.13 saves,
// views, tied weights, nested state; counts and statistics equal torch's.
func TestTorchSavedFilesMatchTorch(t *testing.T) {
	py := testenv.TorchPython(t)
	dir := t.TempDir()
	if out, err := exec.Command(py, "-c", genTorch, dir).CombinedOutput(); err != nil {
		t.Fatalf("torch.save: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth map[string]genTruth
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"zip.pt", "legacy.pt"} {
		t.Run(name, func(t *testing.T) {
			c, err := formats.Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			r, err := inspect.Scan(context.Background(), c, inspect.Options{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]*inspect.TensorStats{}
			tensors := map[string]*formats.Tensor{}
			for i, ts := range r.Tensors {
				got[ts.Name] = ts
				tensors[ts.Name] = c.Tensors[i]
			}
			for _, f := range r.Findings {
				if f.Severity == "error" && f.Check != inspect.CheckNonFinite {
					t.Errorf("error finding: %+v", f)
				}
			}
			for key, w := range truth {
				ts, ok := got[key]
				if !ok {
					t.Errorf("%s: missing", key)
					continue
				}
				if !slices.Equal(ts.Shape, w.Shape) {
					t.Errorf("%s: shape %v, torch %v", key, ts.Shape, w.Shape)
				}
				if ts.NaN != w.NaN || ts.PosInf != w.PosInf || ts.NegInf != w.NegInf || ts.Finite != w.Finite {
					t.Errorf("%s: nan %d +inf %d -inf %d finite %d, torch %d %d %d %d", key, ts.NaN, ts.PosInf, ts.NegInf, ts.Finite, w.NaN, w.PosInf, w.NegInf, w.Finite)
				}
				if w.Min != nil && (ts.Min != *w.Min || ts.Max != *w.Max) {
					t.Errorf("%s: min %v max %v, torch %v %v", key, ts.Min, ts.Max, *w.Min, *w.Max)
				}
				// The promise (docs/kernels.md): the mean within 1e-6 of the
				// root mean square (F32 and C64 parts fold in float32 lanes on
				// AVX2); the sum then within 1e-6·√n·L2, which bounds Σ|x|.
				n := float64(uint64(w.Parts) * ts.Finite)
				if sum := ts.Mean * n; math.Abs(sum-w.Sum) > 1e-9*math.Max(1, math.Abs(w.Sum))+1e-6*math.Sqrt(n*ts.SumSq) {
					t.Errorf("%s: sum %v, torch %v", key, sum, w.Sum)
				}
				if tensors[key].Contiguous() != w.Contiguous {
					t.Errorf("%s: contiguous %v, torch %v", key, tensors[key].Contiguous(), w.Contiguous)
				}
			}
			if tensors["tied.b"].TiedTo != "tied.a" || tensors["tied.a"].TiedTo != "" {
				t.Errorf("tied.b is tied to %q", tensors["tied.b"].TiedTo)
			}
			if tensors["view.offset"].TiedTo != "" {
				t.Error("a view at another offset of the same storage is reported tied")
			}
			if len(got) != len(truth) {
				t.Errorf("%d tensors, torch has %d", len(got), len(truth))
			}
		})
	}
	t.Run("diff zip legacy", func(t *testing.T) {
		// The same state saved both ways: every tensor identical, views
		// compared through their strides.
		r, err := diff.ComparePaths(context.Background(), filepath.Join(dir, "zip.pt"), filepath.Join(dir, "legacy.pt"), diff.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Summary.Same() || r.Summary.Identical != len(truth) {
			t.Errorf("identical %d of %d: %+v", r.Summary.Identical, r.Summary.Tensors, r.Summary)
		}
		// A view against its contiguous copy: identical values.
		base, err := formats.Open(filepath.Join(dir, "zip.pt"))
		if err != nil {
			t.Fatal(err)
		}
		if base.Tensor("view.t").Contiguous() {
			t.Fatal("view.t is contiguous")
		}
	})
	t.Run("sharded", func(t *testing.T) {
		c, err := formats.Open(filepath.Join(dir, "sharded"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Layout != formats.LayoutSharded || len(c.Files) != 2 || len(c.Tensors) != 5 {
			t.Fatalf("layout %s, %d files, %d tensors", c.Layout, len(c.Files), len(c.Tensors))
		}
		for _, p := range c.AllProblems() {
			if p.Severity == formats.SevError {
				t.Errorf("problem: %v", p.Err)
			}
		}
	})
}
