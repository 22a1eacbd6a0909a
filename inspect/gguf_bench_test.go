package inspect

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// BenchmarkScanGGUF scans benchArch (CKPT_BENCH_ARCH=qwen2-0.5b for the
// 0.5B shape of the issue) written as GGUF with every matrix in F16, Q8_0 or
// Q4_K (1-D tensors stay F32, as llama.cpp writes them), page-cached, beside
// the read limit of the same file. Besides wall-clock MB/s each reports MB
// per CPU-second of the process (every thread): on a loaded machine the ratio
// of those is what the wall-clock ratio would be on an idle one, both being
// bound by the CPU.
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
				processRate(b, float64(size)/1e6, func() {
					if _, err := Scan(context.Background(), c, Options{}); err != nil {
						b.Fatal(err)
					}
				})
			})
			b.Run("readlimit", func(b *testing.B) {
				b.SetBytes(size)
				processRate(b, float64(size)/1e6, func() { readLimit(b, path, size, 0) })
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

// BenchmarkBlockStats is the block kernel on one default chunk (8 MiB) of
// each type, handed over a read piece (readBytes) at a time as the engine
// does, beside memread: the same bytes read once with nothing computed (four
// XOR chains over 64-bit words, as ../shared/bench/memread.c). Values/s is
// per core (one goroutine); the ratio scan/memread of the MB/s is the cost of
// the statistics.
func BenchmarkBlockStats(b *testing.B) {
	for _, ty := range []ggml.Type{ggml.Q4_0, ggml.Q8_0, ggml.Q2_K, ggml.Q3_K, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K} {
		tr, _ := ty.Traits()
		data := synth.QuantBlocks(ty, DefaultChunkBytes/tr.BlockBytes, 1)
		dt, _ := formats.DTypeOfGGML(ty)
		values := float64(len(data) / tr.BlockBytes * tr.BlockElems)
		step := int(chunkLen(dt, readBytes))
		b.Run(ty.String()+"/scan", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			cpuRate(b, values, "values", func() {
				acc := NewAcc()
				for off := 0; off < len(data); off += step {
					a := Stats(dt, data[off:min(off+step, len(data))])
					acc.Merge(&a)
				}
			})
			b.ReportMetric(values*float64(b.N)/b.Elapsed().Seconds(), "values/s")
		})
		b.Run(ty.String()+"/memread", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			cpuRate(b, float64(len(data))/1e6, "MB", func() { memread(data) })
		})
	}
}

var memreadSink uint64

// memread reads every 64-bit word of b once.
func memread(b []byte) {
	var a0, a1, a2, a3 uint64
	i := 0
	for ; i+32 <= len(b); i += 32 {
		a0 ^= binary.LittleEndian.Uint64(b[i:])
		a1 ^= binary.LittleEndian.Uint64(b[i+8:])
		a2 ^= binary.LittleEndian.Uint64(b[i+16:])
		a3 ^= binary.LittleEndian.Uint64(b[i+24:])
	}
	for ; i < len(b); i++ {
		a0 ^= uint64(b[i])
	}
	memreadSink ^= a0 ^ a1 ^ a2 ^ a3
}

// BenchmarkBlockStatsPaths compares, on the same data, the integer kernels
// (kernel_ggml.go) with the dequantizing path they replace, pass by pass, on
// random quants (synth.QuantBlocks: every scale 1/64) and on blocks quantized
// from normal weights (quantizeLike), beside memread of the same bytes.
func BenchmarkBlockStatsPaths(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, ty := range []ggml.Type{ggml.Q4_0, ggml.Q5_0, ggml.Q5_1, ggml.Q8_0, ggml.Q3_K, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K, ggml.Q2_K, ggml.Q4_1, ggml.IQ4_NL, ggml.IQ4_XS, ggml.MXFP4} {
		tr, _ := ty.Traits()
		blocks := DefaultChunkBytes / tr.BlockBytes
		for _, kind := range []string{"random", "weights"} {
			data := synth.QuantBlocks(ty, blocks, 1)
			if kind == "weights" {
				data = quantizeLike(rng, ty, blocks, 0, 0.02)
			}
			dt, _ := formats.DTypeOfGGML(ty)
			values := float64(len(data) / tr.BlockBytes * tr.BlockElems)
			pass := ggmlPassElems / tr.BlockElems * tr.BlockBytes
			var g ggmlScratch
			var vals [blockElems]float64
			b.Run(ty.String()+"/"+kind+"/memread", func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				cpuRate(b, float64(len(data))/1e6, "MB", func() { memread(data) })
			})
			for _, path := range []string{"integer", "dequant"} {
				b.Run(ty.String()+"/"+kind+"/"+path, func(b *testing.B) {
					b.SetBytes(int64(len(data)))
					cpuRate(b, values, "values", func() {
						for off := 0; off < len(data); off += pass {
							src := data[off:min(off+pass, len(data))]
							if path == "integer" {
								if _, ok := ggmlIntKernels[ty](src); !ok {
									b.Fatal("integer kernel refused finite blocks")
								}
							} else {
								g.dequantStats(dt, ty, src, &vals)
							}
						}
					})
					b.ReportMetric(values*float64(b.N)/b.Elapsed().Seconds(), "values/s")
				})
			}
		}
	}
}

// cpuRate runs body b.N times on one locked OS thread and reports, beside the
// benchmark's wall-clock rates, units per CPU-second of that thread (unit
// names them: "values" or "MB").
func cpuRate(b *testing.B, units float64, unit string, body func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, ok := threadCPU()
	for b.Loop() {
		body()
	}
	if t1, ok1 := threadCPU(); ok && ok1 && t1 > t0 {
		b.ReportMetric(units*float64(b.N)/(t1-t0).Seconds(), unit+"/cpu-s")
	}
}

// processRate runs body b.N times and reports units per CPU-second of the
// whole process (unit: "MB").
func processRate(b *testing.B, units float64, body func()) {
	t0, ok := processCPU()
	for range b.N {
		body()
	}
	if t1, ok1 := processCPU(); ok && ok1 && t1 > t0 {
		b.ReportMetric(units*float64(b.N)/(t1-t0).Seconds(), "MB/cpu-s")
	}
}
