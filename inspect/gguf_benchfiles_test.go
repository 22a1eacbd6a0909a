package inspect

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// The GGUF files bench/gguf.sh scans, written by TestBenchGGUFFiles.

// benchGGUFKinds are the files: every matrix in one type; "Q4_K_M", a mix
// like llama.cpp's: Q6_K for the embeddings and output, attn_v and ffn_down
// of every other layer, Q4_K for the other matrices; and "Q4_K_M-rows", the
// same with llama.cpp's fallback where a row is not a multiple of 256 wide
// (Q4_K → Q5_0, Q6_K → Q8_0), the matrices in their own shapes: what a real
// Q4_K_M file of Qwen2-0.5B (rows of 896) mostly holds; "Q5_K_M", the mix
// with Q5_K for Q4_K, and "Q5_K_M-rows" (Q5_K → Q5_1 where the rows are
// short); "Q4_0", every matrix Q4_0; "Q2_K", "Q3_K", "IQ4_XS", "Q4_1" and
// "MXFP4", every matrix in that type; "Q3_K_M", llama.cpp's Q3_K_M mix
// (benchQ3KMType).
var benchGGUFKinds = []string{"F16", "Q8_0", "Q4_K", "Q5_K", "Q4_K_M", "Q4_K_M-rows", "Q5_K_M", "Q5_K_M-rows", "Q4_0", "Q2_K", "Q3_K", "Q3_K_M", "IQ4_XS", "Q4_1", "MXFP4"}

// benchGGUFType is the type of a matrix named name in a file of kind.
func benchGGUFType(kind, name string, layer int) ggml.Type {
	switch kind {
	case "F16":
		return ggml.F16
	case "Q8_0":
		return ggml.Q8_0
	case "Q4_K":
		return ggml.Q4_K
	case "Q5_K":
		return ggml.Q5_K
	case "Q4_0":
		return ggml.Q4_0
	case "Q2_K":
		return ggml.Q2_K
	case "IQ4_XS":
		return ggml.IQ4_XS
	case "Q4_1":
		return ggml.Q4_1
	case "MXFP4":
		return ggml.MXFP4
	case "Q3_K":
		return ggml.Q3_K
	case "Q3_K_M":
		return benchQ3KMType(name, layer)
	}
	if strings.Contains(name, "embed") || strings.Contains(name, "lm_head") ||
		(layer%2 == 0 && (strings.Contains(name, "v_proj") || strings.Contains(name, "down_proj"))) {
		return ggml.Q6_K
	}
	if kind == "Q5_K_M" {
		return ggml.Q5_K
	}
	return ggml.Q4_K
}

// writeBenchGGUFKind writes arch as a GGUF file of kind: the matrices
// quantized from normal weights (quantizeLike; F16 rounded from them), each
// reshaped into rows of 256 values so that every one takes its type (the
// scan does not depend on the shape; llama.cpp would write the matrices
// whose rows are not a multiple of 256, 896 wide in Qwen2-0.5B, as Q5_0 or
// Q8_0, as kind Q4_K_M-rows does), the 1-D tensors F32.
func writeBenchGGUFKind(t testing.TB, path string, arch synth.Arch, kind string) {
	rng := rand.New(rand.NewPCG(5, uint64(len(kind))))
	g := &synth.GGUF{}
	for _, s := range arch.Specs(formats.F32) {
		gt := synth.GGUFTensor{Name: s.Name, Type: ggml.F32, Shape: s.Shape}
		if len(s.Shape) == 2 && s.Shape[0]*s.Shape[1]%256 == 0 {
			n := int(s.Shape[0] * s.Shape[1])
			layer := -1
			if f := strings.Split(s.Name, "."); len(f) > 2 && f[1] == "layers" {
				for _, c := range f[2] {
					layer = max(layer, 0)*10 + int(c-'0')
				}
			}
			gt.Type = benchGGUFType(strings.TrimSuffix(kind, "-rows"), s.Name, layer)
			gt.Shape = []uint64{uint64(n / 256), 256}
			if strings.HasSuffix(kind, "-rows") {
				gt.Shape = s.Shape
				if s.Shape[1]%256 != 0 {
					gt.Type = map[ggml.Type]ggml.Type{ggml.Q4_K: ggml.Q5_0, ggml.Q5_K: ggml.Q5_1, ggml.Q6_K: ggml.Q8_0}[gt.Type]
				}
				if s.Shape[1]%32 != 0 { // rows too short for any block (the tiny architecture)
					g.Tensors = append(g.Tensors, synth.GGUFTensor{Name: s.Name, Type: ggml.F32, Shape: s.Shape})
					continue
				}
			}
			if gt.Type == ggml.F16 {
				gt.Data = make([]byte, 2*n)
				for i := 0; i < n; i++ {
					binary.LittleEndian.PutUint16(gt.Data[2*i:], f16Bits(0.02*rng.NormFloat64()))
				}
			} else {
				tr, _ := gt.Type.Traits()
				gt.Data = quantizeLike(rng, gt.Type, n/tr.BlockElems, 0, 0.02)
			}
		}
		g.Tensors = append(g.Tensors, gt)
	}
	if err := os.WriteFile(path, g.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBenchGGUFFiles writes the bench files: with CKPT_GGUF_BENCH_DIR set
// (bench/gguf.sh), every kind of CKPT_BENCH_ARCH (default qwen2-0.5b) there
// as KIND.gguf, or only those CKPT_GGUF_BENCH_KINDS names (separated by
// spaces) when it is set; otherwise every kind of the tiny architecture into
// a temporary directory. Each is scanned: every value counted, all finite, and
// the F16 file's statistics those of normal weights.
func TestBenchGGUFFiles(t *testing.T) {
	dir, name := os.Getenv("CKPT_GGUF_BENCH_DIR"), os.Getenv("CKPT_BENCH_ARCH")
	if dir == "" {
		dir, name = t.TempDir(), "tiny"
	} else if name == "" {
		name = "qwen2-0.5b"
	}
	arch, err := synth.ArchByName(name)
	if err != nil {
		t.Fatal(err)
	}
	kinds := benchGGUFKinds
	if k := strings.Fields(os.Getenv("CKPT_GGUF_BENCH_KINDS")); len(k) > 0 && os.Getenv("CKPT_GGUF_BENCH_DIR") != "" {
		kinds = k
	}
	for _, kind := range kinds {
		if !slices.Contains(benchGGUFKinds, kind) {
			t.Fatalf("no bench file kind %q (kinds: %v)", kind, benchGGUFKinds)
		}
		path := filepath.Join(dir, kind+".gguf")
		writeBenchGGUFKind(t, path, arch, kind)
		r := scanPath(t, path)
		var want uint64
		for _, s := range arch.Specs(formats.F32) {
			n := uint64(1)
			for _, d := range s.Shape {
				n *= d
			}
			want += n
		}
		var got uint64
		for _, ts := range r.Tensors {
			got += ts.Count
			if ts.Finite != ts.Count {
				t.Errorf("%s %s: %d of %d values finite", kind, ts.Name, ts.Finite, ts.Count)
			}
			if kind == "F16" && len(ts.Shape) == 2 && ts.Count > 1<<14 {
				if std := ts.Std(); std < 0.019 || std > 0.021 {
					t.Errorf("F16 %s: std %g, want 0.02", ts.Name, std)
				}
			}
		}
		if got != want {
			t.Errorf("%s: %d values scanned, the architecture has %d", kind, got, want)
		}
	}
}
