package inspect

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// quantizeQ3K writes the Q3_K super-block b quantized from the 256 values x
// as quantize_row_q3_K does without its error search: each 16-value
// sub-block's scale maps its largest magnitude to −4, d maps the largest
// scale to −32 (so sc − 32 in [−32, 31]), then each value is rounded to q'
// in [−4, 3] against its sub-block's d·(sc − 32).
func quantizeQ3K(b []byte, x []float64) {
	round := func(v float64) int { return int(math.Round(v)) }
	var scale [16]float64
	maxScale := 0.0
	for j := range scale {
		mx := 0.0
		for _, v := range x[16*j : 16*j+16] {
			if math.Abs(v) > math.Abs(mx) {
				mx = v
			}
		}
		scale[j] = mx / -4
		if math.Abs(scale[j]) > math.Abs(maxScale) {
			maxScale = scale[j]
		}
	}
	hd := f16Bits(maxScale / -32)
	binary.LittleEndian.PutUint16(b[108:], hd)
	d := float64(ggml.F16ToF32(hd))
	for j := range scale {
		sc := 0
		if d != 0 {
			sc = max(-32, min(31, round(scale[j]/d)))
		}
		putQ3KScale(b, j, sc+32)
		for l := 0; l < 16; l++ {
			q := 0
			if d1 := d * float64(sc); d1 != 0 {
				q = max(-4, min(3, round(x[16*j+l]/d1)))
			}
			putQ3KCode(b, j, l, q)
		}
	}
}

// putQ3KCode sets q' (in [−4, 3]) of value l of sub-block j of a Q3_K
// super-block (the inverse of q3kCode).
func putQ3KCode(b []byte, j, l, q int) {
	h, k, s := j>>3, j>>1&3, j&1
	c := q + 4 // bit 2: the high bit
	p, mb := &b[32+32*h+16*s+l], &b[16*s+l]
	*p = *p&^(3<<(2*k)) | byte(c&3)<<(2*k)
	*mb = *mb&^(1<<(4*h+k)) | byte(c>>2)<<(4*h+k)
}

// putQ3KScale sets the 6-bit scale j of a Q3_K super-block to sc (the
// inverse of q3kScales).
func putQ3KScale(b []byte, j, sc int) {
	lo, hi := &b[96+j&7], &b[104+j&3]
	nib, pair := uint(4*(j>>3)), uint(2*(j>>2))
	*lo = *lo&^(15<<nib) | byte(sc&15)<<nib
	*hi = *hi&^(3<<pair) | byte(sc>>4&3)<<pair
}

// q3kScalePlain is sc − 32 of scale j, its bits read one place at a time.
func q3kScalePlain(b *[110]byte, j int) int64 {
	return int64(b[96+j&7]>>(4*(j>>3))&15|(b[104+j&3]>>(2*(j>>2))&3)<<4) - 32
}

// TestQ3KLayout holds q3kCode, q3kScales and q3kScalePlain to
// dequantize_row_q3_K's reading of the block (ggml's reference dequantizer
// with d = 1: every scale 33 gives the codes q', every q' 1 the scales
// sc − 32), and putQ3KCode and putQ3KScale to them.
func TestQ3KLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(101, 102))
	var y [256]float32
	for round := 0; round < 300; round++ {
		b := (*[110]byte)(randomBits(rng, 110))
		binary.LittleEndian.PutUint16(b[108:], 0x3c00)
		save := *b
		for j := 0; j < 16; j++ {
			putQ3KScale(b[:], j, 33)
		}
		if q := b[96:108]; !bytes.Equal(q[:8], bytes.Repeat([]byte{0x11}, 8)) || !bytes.Equal(q[8:], []byte{0xaa, 0xaa, 0xaa, 0xaa}) {
			t.Fatalf("every scale 33 packed as % x", q)
		}
		ggml.DequantizeRef(ggml.Q3_K, y[:], b[:])
		for j := 0; j < 16; j++ {
			for l := 0; l < 16; l++ {
				if got, want := q3kCode(b, j, l), int64(y[16*j+l]); got != want {
					t.Fatalf("sub-block %d value %d: q' %d, the reference's %d", j, l, got, want)
				}
				q := rng.IntN(8) - 4
				putQ3KCode(b[:], j, l, q)
				if got := q3kCode(b, j, l); got != int64(q) {
					t.Fatalf("putQ3KCode %d then q3kCode %d", q, got)
				}
			}
		}
		*b = save
		for j := 0; j < 16; j++ {
			for l := 0; l < 16; l++ {
				putQ3KCode(b[:], j, l, 1)
			}
		}
		ggml.DequantizeRef(ggml.Q3_K, y[:], b[:])
		lo, hi := q3kScales((*[12]byte)(b[96:108]))
		for j := 0; j < 16; j++ {
			want := int64(y[16*j])
			if got := q3kScale(lo, hi, j); got != want {
				t.Fatalf("scale %d of % x: %d, the reference's %d", j, b[96:108], got, want)
			}
			if got := q3kScalePlain(b, j); got != want {
				t.Fatalf("scale %d of % x, read plainly: %d, the reference's %d", j, b[96:108], got, want)
			}
			sc := rng.IntN(64)
			putQ3KScale(b[:], j, sc)
			if got := q3kScalePlain(b, j); got != int64(sc-32) {
				t.Fatalf("putQ3KScale %d then %d", sc, got+32)
			}
		}
	}
}

// q3kRangePlain is the plain twin of q3kRange: the codes one by one.
func q3kRangePlain(b *[110]byte, j int) (qlo, qhi int64) {
	qlo, qhi = 3, -4
	for l := 0; l < 16; l++ {
		q := q3kCode(b, j, l)
		qlo, qhi = min(qlo, q), max(qhi, q)
	}
	return qlo, qhi
}

// TestQ3KRange holds q3kRange to its plain twin on every sub-block of
// random super-blocks, of super-blocks whose codes span a narrower range,
// and of super-blocks whose every byte is one value (each of the 256).
func TestQ3KRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(103, 104))
	check := func(b *[110]byte) {
		t.Helper()
		for j := 0; j < 16; j++ {
			lo, hi := q3kRange(b, j)
			wlo, whi := q3kRangePlain(b, j)
			if lo != wlo || hi != whi {
				t.Fatalf("sub-block %d of % x: q' %d to %d, the twin's %d to %d", j, b[:], lo, hi, wlo, whi)
			}
		}
	}
	for round := 0; round < 3000; round++ {
		b := (*[110]byte)(randomBits(rng, 110))
		if round%2 == 1 {
			lo, span := rng.IntN(8), 1+rng.IntN(8)
			for j := 0; j < 16; j++ {
				for l := 0; l < 16; l++ {
					putQ3KCode(b[:], j, l, min(7, lo+rng.IntN(span))-4)
				}
			}
		}
		check(b)
	}
	for v := 0; v < 256; v++ {
		var b [110]byte
		for i := range b {
			b[i] = byte(v)
		}
		check(&b)
		b[rng.IntN(96)] = byte(rng.IntN(256)) // one code off the rest
		check(&b)
	}
}

// intQ3KPlain is the plain twin of intQ3_K: each sub-block's quants read
// one by one (q3kCode) into int64 sums over the super-block, its scale
// read plainly, a sub-block with sc = 32 and a super-block with d = ±0
// folded value by value as ggml computes the values, every sub-block's
// extremes taken.
func intQ3KPlain(src []byte) (Acc, bool) {
	f := newIntFold()
	for off := 0; off+110 <= len(src); off += 110 {
		b := (*[110]byte)(src[off:])
		hd := binary.LittleEndian.Uint16(b[108:])
		if !f16Finite(hd) {
			return Acc{}, false
		}
		md, e := f16Parts(hd)
		u := pow2(e)
		var sum, sq int64
		for j := 0; j < 16; j++ {
			sc := q3kScalePlain(b, j)
			if md == 0 || sc == 0 {
				dl := ggml.F16ToF32(hd) * float32(sc)
				for l := 0; l < 16; l++ {
					f.value(dl * float32(q3kCode(b, j, l)))
				}
				continue
			}
			A := md * sc
			var s1, s2 int64
			var z uint64
			qlo, qhi := int64(3), int64(-4)
			for l := 0; l < 16; l++ {
				q := q3kCode(b, j, l)
				s1, s2, z = s1+q, s2+q*q, z+b2u(q == 0)
				qlo, qhi = min(qlo, q), max(qhi, q)
			}
			f.n += 16
			sum += A * s1
			sq += A * A * s2
			if z > 0 {
				f.zeros += z
				if A < 0 {
					f.negZero = 1
				} else {
					f.posZero = 1
				}
			}
			x, y := A*qlo, A*qhi
			if x > y {
				x, y = y, x
			}
			f.lo, f.hi = min(f.lo, float64(x)*u), max(f.hi, float64(y)*u)
		}
		f.sum += u * float64(sum)
		f.sq += u * u * float64(sq)
	}
	return f.acc()
}

// q3kZeroPass is a pass of Q3_K super-blocks rich in zero values: d from
// finiteF16 (zeros and subnormals of both signs among them) or at random,
// some scales 32 (every value ±0), others of either sign, and the codes often
// q' = 0.
func q3kZeroPass(rng *rand.Rand, blocks int) []byte {
	b := randomBits(rng, blocks*110)
	for i := 0; i < blocks; i++ {
		blk := b[i*110 : (i+1)*110]
		hd := finiteF16[rng.IntN(len(finiteF16))]
		if rng.IntN(2) == 0 {
			hd = uint16(rng.Uint32()) &^ 0x4000
		}
		binary.LittleEndian.PutUint16(blk[108:], hd)
		for j := 0; j < 16; j++ {
			putQ3KScale(blk, j, []int{32, 33, 31, 0, 63, rng.IntN(64)}[rng.IntN(6)])
			for l := 0; l < 16; l++ {
				if rng.IntN(3) == 0 {
					putQ3KCode(blk, j, l, 0)
				}
			}
		}
	}
	return b
}

// checkQ3K holds intQ3_K to its plain twin, bit for bit, and, where it
// takes the pass, to ReferenceStats.
func checkQ3K(t *testing.T, what string, src []byte) {
	t.Helper()
	got, ok := intQ3_K(src)
	want, wantOK := intQ3KPlain(src)
	if ok != wantOK || !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: intQ3_K %v %+v, the plain twin %v %+v", what, ok, got, wantOK, want)
	}
	if ok {
		dt, _ := formats.DTypeOfGGML(ggml.Q3_K)
		checkIntAcc(t, "Q3_K "+what, got, ReferenceStats(dt, src), 1e-10)
	}
}

// TestGGMLQ3K holds intQ3_K (whole super-blocks from their bit planes' sums)
// to its plain twin bit for bit, and to the reference, on weight-like,
// offset, adversarial and zero-rich passes, super-blocks each wider than the
// last and every other one negated (the extremes move on from any of them),
// and all ±0; and wants the zero-rich passes to hold zero values.
func TestGGMLQ3K(t *testing.T) {
	rng := rand.New(rand.NewPCG(105, 106))
	per := ggmlPassElems / 256
	for round := 0; round < 60; round++ {
		blocks := []int{1, 2, 7, per}[round%4]
		checkQ3K(t, "weight-like", quantizeLike(rng, ggml.Q3_K, blocks, 0, 0.02))
		checkQ3K(t, "weight-like, offset", quantizeLike(rng, ggml.Q3_K, blocks, 0.01, 0.02))
		checkQ3K(t, "adversarial", adversarialPass(rng, ggml.Q3_K, blocks))
		checkQ3K(t, "zeros", q3kZeroPass(rng, blocks))
		var grow []byte
		for i := 0; i < blocks; i++ {
			blk := quantizeLike(rng, ggml.Q3_K, 1, 0.001*float64(i%3), 0.02*float64(1+i))
			if i%2 == 1 {
				blk[109] ^= 0x80
			}
			grow = append(grow, blk...)
		}
		checkQ3K(t, "growing", grow)
		for _, neg := range []bool{true, false} {
			checkQ3K(t, "all zeros", bytes.Repeat(negZeroBlock(ggml.Q3_K, neg), blocks))
		}
	}
	// Every scale 32: every value a zero, of d's sign where the high bit
	// is set, else of the other; the extremes' signs must follow.
	for _, hd := range []uint16{0x3c00, 0xbc00, 0x0001, 0x8001} {
		for _, m := range []byte{0x00, 0xff, 0x0f, 0xf0, 0x01} {
			src := randomBits(rng, 3*110)
			for i := 0; i < 3; i++ {
				blk := src[110*i:]
				for k := 0; k < 32; k++ {
					blk[k] = m
				}
				for j := 0; j < 16; j++ {
					putQ3KScale(blk, j, 32)
				}
				binary.LittleEndian.PutUint16(blk[108:], hd)
			}
			checkQ3K(t, "scales 32", src)
		}
		// every q' 0 under scales 31 or 33: zeros of d's sign XOR the
		// scale's
		for _, sc := range []int{31, 33} {
			blk := make([]byte, 110)
			for j := 0; j < 16; j++ {
				putQ3KScale(blk, j, sc)
				for l := 0; l < 16; l++ {
					putQ3KCode(blk, j, l, 0)
				}
			}
			binary.LittleEndian.PutUint16(blk[108:], hd)
			checkQ3K(t, "q' 0", blk)
		}
	}
	zeros := 0
	for round := 0; round < 20; round++ {
		if a, ok := intQ3_K(q3kZeroPass(rng, 4)); ok {
			zeros += int(a.Zeros)
		}
	}
	if zeros == 0 {
		t.Errorf("q3kZeroPass made no zero values")
	}
}

// FuzzGGMLQ3K holds intQ3_K to its plain twin, bit for bit, and to the
// reference on arbitrary bytes, d forced finite.
func FuzzGGMLQ3K(f *testing.F) {
	f.Add(make([]byte, 110))
	f.Add(bytes.Repeat([]byte{0x00, 0x80, 0xff, 0x20, 0x55}, 44))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := append([]byte(nil), data[:min(len(data), 110*ggmlPassElems/256)/110*110]...)
		for off := 0; off < len(src); off += 110 {
			src[off+109] &^= 0x40 // finite
		}
		checkQ3K(t, "fuzz", src)
	})
}

// benchQ3KMType is the type of a matrix in a Q3_K_M file as llama.cpp's
// llama_tensor_get_type gives it for a Qwen2-shaped model (24 layers, the
// embeddings tied to the output): Q6_K for the embeddings (the output
// matrix); Q5_K for attn_v of the first two layers and ffn_down of the
// first n_layer/16 (layer 0 of 24), Q4_K for the other attn_v and ffn_down
// and for attn_output; Q3_K for attn_q, attn_k, ffn_gate and ffn_up.
func benchQ3KMType(name string, layer int) ggml.Type {
	switch {
	case strings.Contains(name, "embed") || strings.Contains(name, "lm_head"):
		return ggml.Q6_K
	case strings.Contains(name, "v_proj") && layer < 2, strings.Contains(name, "down_proj") && layer < 1:
		return ggml.Q5_K
	case strings.Contains(name, "v_proj"), strings.Contains(name, "down_proj"), strings.Contains(name, "o_proj"):
		return ggml.Q4_K
	}
	return ggml.Q3_K
}

// q3kSumsPlain is the plain twin of ggmlSumsQ3_KGo: the codes as q3kCode
// reads them, one by one, summed into the four fields.
func q3kSumsPlain(src []byte, out []uint64) {
	for i := 0; 110*i+110 <= len(src); i++ {
		b := (*[110]byte)(src[110*i:])
		for j := 0; j < 16; j++ {
			var c, z, sq, pm uint64
			for l := 0; l < 16; l++ {
				q := q3kCode(b, j, l)
				c, z, sq, pm = c+uint64(q+4), z+b2u(q == 0), sq+uint64(q*q), pm+b2u(q >= 0)
			}
			out[16*i+j] = c | z<<16 | sq<<32 | pm<<48
		}
	}
}

// randomQ3KWords is n q3kSums words with fields drawn within their bounds
// (Σc up to 112, zeros and q' ≥ 0 up to 16, Σq'² up to 256), not
// necessarily of any block.
func randomQ3KWords(rng *rand.Rand, n int) []uint64 {
	w := make([]uint64, n)
	for i := range w {
		w[i] = uint64(rng.IntN(113)) | uint64(rng.IntN(17))<<16 | uint64(rng.IntN(257))<<32 | uint64(rng.IntN(17))<<48
	}
	return w
}

// TestGGMLSumsQ3K holds the Q3_K words of the vector loop (where it runs),
// of its Go twin and of the plain twin to each other on weight-like, random,
// adversarial and zero-rich passes of 1 to 17 super-blocks (no word written
// past the whole super-blocks); the super-block sums' vector loop to its Go
// twin on those words and on random ones; and intQ3_K with the vector loops
// to intQ3_K with the Go twins, bit for bit.
func TestGGMLSumsQ3K(t *testing.T) {
	needGGMLSumsAsm(t)
	rng := rand.New(rand.NewPCG(107, 108))
	const sentinel = 0x5a5a5a5a5a5a5a5a
	check := func(what string, src []byte) {
		t.Helper()
		n := len(src) / 110 * 16
		vec, gow, plain := make([]uint64, n+4), make([]uint64, n+4), make([]uint64, n+4)
		for i := range vec {
			vec[i], gow[i], plain[i] = sentinel, sentinel, sentinel
		}
		ggmlSumsQ3_KVec(src, vec)
		ggmlSumsQ3_KGo(src, gow)
		q3kSumsPlain(src, plain)
		if !reflect.DeepEqual(gow, plain) {
			t.Fatalf("%s: the Go twin's words\n%x\nthe plain twin's\n%x", what, gow, plain)
		}
		if !reflect.DeepEqual(vec, gow) {
			t.Fatalf("%s: the vector loop's words\n%x\nthe Go twin's\n%x", what, vec, gow)
		}
		// the super-block sums, on these words and on random ones (every
		// field at most its bound)
		nb := len(src) / 110
		scales := make([]uint64, 2*nb)
		for i := 0; i < nb; i++ {
			scales[2*i], scales[2*i+1] = q3kScales((*[12]byte)(src[110*i+96:]))
		}
		for _, words := range [][]uint64{gow, randomQ3KWords(rng, n+4)} {
			sv, sg := make([]q6kSuper, nb+1), make([]q6kSuper, nb+1)
			sv[nb], sg[nb] = q6kSuper{s1: 7}, q6kSuper{s1: 7} // nothing written past the blocks
			ggmlSupersQ3_KVec(scales, words, sv[:nb])
			ggmlSupersQ3_KGo(scales, words, sg[:nb])
			if !reflect.DeepEqual(sv, sg) {
				t.Fatalf("%s: the vector loop's super-block sums\n%+v\nthe Go twin's\n%+v", what, sv, sg)
			}
		}
		got, gotOK := intQ3_K(src)
		save := ggmlSumsAsmOK
		ggmlSumsAsmOK = false
		want, wantOK := intQ3_K(src)
		ggmlSumsAsmOK = save
		if gotOK != wantOK || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: intQ3_K %v %+v, with the Go twin's words %v %+v", what, gotOK, got, wantOK, want)
		}
	}
	for round := 0; round < 100; round++ {
		n := 1 + round%17
		check("weight-like", quantizeLike(rng, ggml.Q3_K, n, 0, 0.02))
		check("random", randomBits(rng, 110*n+rng.IntN(110)))
		check("adversarial", adversarialPass(rng, ggml.Q3_K, n))
		check("zeros", q3kZeroPass(rng, n))
	}
	for v := 0; v < 256; v++ {
		check("constant", bytes.Repeat([]byte{byte(v)}, 2*110))
	}
}
