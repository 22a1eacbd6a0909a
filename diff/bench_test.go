package diff

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// benchPair is 4 MiB per side of BF16 values, B a small update of A.
func benchPair(dt formats.DType) ([]byte, []byte) {
	r := rand.New(rand.NewSource(1))
	n := 4 << 20 / (dt.Bits() / 8)
	a := normals(r, n, 0.02)
	b := make([]float64, n)
	for i := range a {
		b[i] = a[i] + r.NormFloat64()*1e-4
	}
	return encode(dt, a), encode(dt, b)
}

func benchFold(b *testing.B, dt formats.DType) {
	ra, rb := benchPair(dt)
	w := &worker{fa: make([]float64, subBlock), fb: make([]float64, subBlock)}
	n := scalarsIn(dt, len(ra))
	b.SetBytes(int64(len(ra) + len(rb)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var s Stats
		w.fold(n, dt, ra, dt, rb, &s)
	}
}

func BenchmarkFoldBF16(b *testing.B) { benchFold(b, formats.BF16) }
func BenchmarkFoldF16(b *testing.B)  { benchFold(b, formats.F16) }
func BenchmarkFoldF32(b *testing.B)  { benchFold(b, formats.F32) }

func BenchmarkIdenticalChunk(b *testing.B) {
	ra, _ := benchPair(formats.BF16)
	rb := append([]byte(nil), ra...)
	b.SetBytes(int64(2 * len(ra)))
	for i := 0; i < b.N; i++ {
		if string(ra) != string(rb) {
			b.Fatal("differ")
		}
	}
}

// benchGroups measures the group kernel alone (assembly, or its Go twin),
// with its narrow loop for BF16 and F16 unless wide.
func benchGroups(b *testing.B, dt formats.DType, asm, wide bool) {
	fold, narrow := diffGroupsGo(dt), groupFolder(nil)
	if dt != formats.F32 {
		narrow = diffNarrowGo(dt)
	}
	if asm {
		if fold, narrow = asmFolder(dt), asmNarrow(dt); fold == nil {
			b.Skip("no assembly loop in this build or on this CPU")
		}
	}
	if wide {
		narrow = nil
	}
	ra, rb := benchPair(dt)
	w := dt.Size()
	b.SetBytes(int64(len(ra) + len(rb)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var s Stats
		for o := 0; o < len(ra); o += subBlock * w {
			e := min(o+subBlock*w, len(ra))
			compareGroups(dt, narrow, fold, ra[o:e], rb[o:e], &s)
		}
	}
}

func BenchmarkGroupsAsmBF16(b *testing.B)     { benchGroups(b, formats.BF16, true, false) }
func BenchmarkGroupsAsmF16(b *testing.B)      { benchGroups(b, formats.F16, true, false) }
func BenchmarkGroupsAsmF32(b *testing.B)      { benchGroups(b, formats.F32, true, false) }
func BenchmarkGroupsAsmWideBF16(b *testing.B) { benchGroups(b, formats.BF16, true, true) }
func BenchmarkGroupsAsmWideF16(b *testing.B)  { benchGroups(b, formats.F16, true, true) }
func BenchmarkGroupsTwinBF16(b *testing.B)    { benchGroups(b, formats.BF16, false, false) }
func BenchmarkGroupsTwinF32(b *testing.B)     { benchGroups(b, formats.F32, false, false) }

// benchCheckpoints writes two 128 MiB BF16 checkpoints (8 tensors each, B
// a small update of A) and opens them.
func benchCheckpoints(b *testing.B) (*formats.Checkpoint, *formats.Checkpoint) {
	r := rand.New(rand.NewSource(2))
	dir := b.TempDir()
	var ta, tb []tensor
	for k := range 8 {
		n := 8 << 20
		va := normals(r, n, 0.02)
		vb := make([]float64, n)
		for i := range va {
			vb[i] = va[i] + r.NormFloat64()*1e-4
		}
		name := fmt.Sprintf("model.layers.%d.mlp.up_proj.weight", k)
		ta = append(ta, f(formats.BF16, name, []uint64{uint64(n)}, va))
		tb = append(tb, f(formats.BF16, name, []uint64{uint64(n)}, vb))
	}
	writeST(b, filepath.Join(dir, "a", "model.safetensors"), ta...)
	writeST(b, filepath.Join(dir, "b", "model.safetensors"), tb...)
	ca, err := formats.Open(filepath.Join(dir, "a"))
	if err != nil {
		b.Fatal(err)
	}
	cb, err := formats.Open(filepath.Join(dir, "b"))
	if err != nil {
		b.Fatal(err)
	}
	return ca, cb
}

// BenchmarkCompareThenScan is what watch did before the fused pass: compare
// A with B, then scan B (B read twice). Bytes are A's and B's.
func BenchmarkCompareThenScan(b *testing.B) {
	ca, cb := benchCheckpoints(b)
	b.SetBytes(2 * (128 << 20))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compare(context.Background(), ca, cb, Options{}); err != nil {
			b.Fatal(err)
		}
		if _, err := inspect.Scan(context.Background(), cb, inspect.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompareScan is the same work in one pass over B.
func BenchmarkCompareScan(b *testing.B) {
	ca, cb := benchCheckpoints(b)
	b.SetBytes(2 * (128 << 20))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := CompareScan(context.Background(), ca, cb, Options{}, inspect.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
