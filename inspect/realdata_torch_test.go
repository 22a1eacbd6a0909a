package inspect_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

type torchTruth struct {
	Format  string `json:"format"`
	Tensors []struct {
		Name   string   `json:"name"`
		DType  string   `json:"dtype"`
		Shape  []uint64 `json:"shape"`
		NaN    uint64   `json:"nan"`
		PosInf uint64   `json:"posinf"`
		NegInf uint64   `json:"neginf"`
	} `json:"tensors"`
	DangerousGlobals []string `json:"dangerous_globals"`
}

var torchDTypeNames = map[string]formats.DType{
	"float32": formats.F32, "float64": formats.F64, "float16": formats.F16, "bfloat16": formats.BF16,
	"int64": formats.I64, "int32": formats.I32, "int16": formats.I16, "int8": formats.I8,
	"uint8": formats.U8, "bool": formats.BOOL, "complex64": formats.C64,
}

// Every real PyTorch file: the tensors, dtypes, shapes and NaN/±Inf counts
// torch.load gives; malicious files refused with their dangerous globals
// named; LFS pointers and other files a format finding.
func TestRealTorchFilesMatchTorch(t *testing.T) {
	root := testenv.RealdataTorch(t)
	raw, err := os.ReadFile(filepath.Join(root, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth map[string]torchTruth
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rel, want := range truth {
		if want.Format == "json" || want.Format == "hf-shard-index" {
			continue
		}
		seen++
		t.Run(rel, func(t *testing.T) {
			r, err := inspect.ScanPath(context.Background(), filepath.Join(root, rel), inspect.Options{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			has := func(check, sev string) bool {
				for _, f := range r.Findings {
					if f.Check == check && f.Severity == sev {
						return true
					}
				}
				return false
			}
			switch want.Format {
			case "torch-zip", "torch-legacy":
				if has(inspect.CheckPickle, "error") || has(inspect.CheckFormat, "error") {
					t.Fatalf("errors on a benign file: %+v", r.Findings)
				}
				if len(r.Tensors) != len(want.Tensors) {
					t.Fatalf("%d tensors, torch has %d", len(r.Tensors), len(want.Tensors))
				}
				for i, w := range want.Tensors {
					g := r.Tensors[i]
					if g.Name != w.Name || g.DType != torchDTypeNames[w.DType] || !slices.Equal(g.Shape, w.Shape) {
						t.Errorf("tensor %d: got %s %s %v, torch has %s %s %v", i, g.Name, g.DType, g.Shape, w.Name, w.DType, w.Shape)
					}
					if g.Skipped != "" || g.NaN != w.NaN || g.PosInf != w.PosInf || g.NegInf != w.NegInf || g.Count != g.Numel {
						t.Errorf("%s: nan %d +inf %d -inf %d (count %d, skipped %q), torch has %d %d %d", w.Name, g.NaN, g.PosInf, g.NegInf, g.Count, g.Skipped, w.NaN, w.PosInf, w.NegInf)
					}
				}
			case "malicious-pickle":
				if r.Healthy() {
					t.Fatal("a malicious pickle is reported healthy")
				}
				named := map[string]bool{}
				for _, f := range r.Findings {
					if f.Check == inspect.CheckPickle && f.Severity == "error" {
						named[f.Global] = true
						if f.Offset == nil {
							t.Errorf("pickle finding without an offset: %+v", f)
						}
					}
				}
				for _, g := range want.DangerousGlobals {
					if !named[g] {
						t.Errorf("dangerous global %s not named; findings %+v", g, r.Findings)
					}
				}
			case "lfs-pointer", "not-torch":
				if !has(inspect.CheckFormat, "error") {
					t.Errorf("no format error: %+v", r.Findings)
				}
				if want.Format == "lfs-pointer" && !strings.Contains(r.Findings[0].Message, "LFS") {
					t.Errorf("the LFS pointer is not named: %+v", r.Findings)
				}
			default:
				t.Fatalf("unknown truth format %q", want.Format)
			}
		})
	}
	if seen < 15 {
		t.Fatalf("only %d files in truth.json", seen)
	}
}
