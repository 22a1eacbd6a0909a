package diff

import (
	"math/rand"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
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

// benchGroups measures the group kernel alone (assembly, or its Go twin).
func benchGroups(b *testing.B, dt formats.DType, asm bool) {
	fold := diffGroupsGo(dt)
	if asm {
		if fold = asmFolder(dt); fold == nil {
			b.Skip("no assembly loop in this build or on this CPU")
		}
	}
	ra, rb := benchPair(dt)
	w := dt.Size()
	b.SetBytes(int64(len(ra) + len(rb)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var s Stats
		for o := 0; o < len(ra); o += subBlock * w {
			e := min(o+subBlock*w, len(ra))
			compareGroups(dt, fold, ra[o:e], rb[o:e], &s)
		}
	}
}

func BenchmarkGroupsAsmBF16(b *testing.B)  { benchGroups(b, formats.BF16, true) }
func BenchmarkGroupsAsmF16(b *testing.B)   { benchGroups(b, formats.F16, true) }
func BenchmarkGroupsAsmF32(b *testing.B)   { benchGroups(b, formats.F32, true) }
func BenchmarkGroupsTwinBF16(b *testing.B) { benchGroups(b, formats.BF16, false) }
func BenchmarkGroupsTwinF32(b *testing.B)  { benchGroups(b, formats.F32, false) }
