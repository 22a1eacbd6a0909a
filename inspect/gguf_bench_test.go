package inspect

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// BenchmarkScanGGUF scans benchArch (CKPT_BENCH_ARCH=qwen2-0.5b for the
// 0.5B shape of the issue) written as GGUF with every matrix in F16, Q8_0 or
// Q4_K (1-D tensors stay F32, as llama.cpp writes them), page-cached, beside
// the read limit of the same file.
func BenchmarkScanGGUF(b *testing.B) {
	arch := benchArchFromEnv(b)
	for _, ty := range []ggml.Type{ggml.F16, ggml.Q8_0, ggml.Q4_K} {
		b.Run(ty.String(), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "m.gguf")
			writeBenchGGUF(b, path, arch, ty)
			c, err := formats.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			size := c.TotalBytes()
			readLimit(b, path, size, 0)
			b.Run("scan", func(b *testing.B) {
				b.SetBytes(size)
				for range b.N {
					if _, err := Scan(context.Background(), c, Options{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("readlimit", func(b *testing.B) {
				b.SetBytes(size)
				for range b.N {
					readLimit(b, path, size, 0)
				}
			})
		})
	}
}

// writeBenchGGUF writes arch's tensors (safetensors names: the scan does
// not care) with random blocks of finite scale.
func writeBenchGGUF(b *testing.B, path string, arch synth.Arch, ty ggml.Type) {
	g := &synth.GGUF{}
	tr, _ := ty.Traits()
	for i, s := range arch.Specs(formats.F32) {
		t := synth.GGUFTensor{Name: s.Name, Type: ggml.F32, Shape: s.Shape}
		if len(s.Shape) == 2 && s.Shape[1]%uint64(tr.BlockElems) == 0 {
			t.Type = ty
			if ty.Blocked() {
				t.Data = synth.QuantBlocks(ty, int(s.Shape[0]*s.Shape[1])/tr.BlockElems, uint64(i))
			}
		}
		g.Tensors = append(g.Tensors, t)
	}
	if err := os.WriteFile(path, g.Encode(), 0o644); err != nil {
		b.Fatal(err)
	}
}
