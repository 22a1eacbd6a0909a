package inspect

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// q5kZeroPass is a pass of Q5_K super-blocks built to have zero values where
// q5kFast must find them (as q4kZeroPass: dmin d's equal, its negation,
// double or half, or ±0, the minimums often k times the scales, some scales
// 0), the codes often k, k in [0, 31].
func q5kZeroPass(rng *rand.Rand, blocks int) []byte {
	b := randomBits(rng, blocks*176)
	for i := 0; i < blocks; i++ {
		blk := (*[176]byte)(b[i*176:])
		k := kZeroHead(rng, blk[:], 32)
		for j := 0; j < 8; j++ {
			for l := 0; l < 32; l++ {
				if rng.IntN(3) == 0 {
					putQ5KCode(blk, j, l, byte(k))
				}
			}
		}
	}
	return b
}

// putQ5KCode sets code l of sub-block j of a Q5_K super-block to c (the
// inverse of q5kCode).
func putQ5KCode(b *[176]byte, j, l int, c byte) {
	nib := 4 * uint(j&1)
	p := &b[48+32*(j>>1)+l]
	*p = *p&^(15<<nib) | (c&15)<<nib
	b[16+l] = b[16+l]&^(1<<j) | (c>>4&1)<<j
}

// TestQ5KCode holds q5kCode to dequantize_row_q5_K's reading of the codes
// (ggml's reference dequantizer with d = 1, dmin = 0 and every scale 1
// gives the codes themselves) and putQ5KCode to q5kCode.
func TestQ5KCode(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	for round := 0; round < 200; round++ {
		b := (*[176]byte)(randomBits(rng, 176))
		binary.LittleEndian.PutUint16(b[0:], 0x3c00)
		binary.LittleEndian.PutUint16(b[2:], 0)
		copy(b[4:16], []byte{1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1})
		var y [256]float32
		ggml.DequantizeRef(ggml.Q5_K, y[:], b[:])
		for j := 0; j < 8; j++ {
			for l := 0; l < 32; l++ {
				if got, want := q5kCode(b, j, l), int64(y[32*j+l]); got != want {
					t.Fatalf("sub-block %d code %d: %d, the reference's %d", j, l, got, want)
				}
				c := byte(rng.IntN(32))
				putQ5KCode(b, j, l, c)
				if got := q5kCode(b, j, l); got != int64(c) {
					t.Fatalf("putQ5KCode %d then q5kCode %d", c, got)
				}
			}
		}
	}
}

// q5kSumsPlain is the plain twin of ggmlSumsQ5_KGo: the codes as q5kCode
// reads them, one by one, summed into the four fields.
func q5kSumsPlain(src []byte, out []uint64) {
	for i := 0; 176*i+176 <= len(src); i++ {
		b := (*[176]byte)(src[176*i:])
		for g := 0; g < 4; g++ {
			var s [4]uint64 // Σlo, Σhi, Σlo², Σhi²
			for l := 0; l < 32; l++ {
				lo, hi := uint64(q5kCode(b, 2*g, l)), uint64(q5kCode(b, 2*g+1, l))
				s[0], s[1], s[2], s[3] = s[0]+lo, s[1]+hi, s[2]+lo*lo, s[3]+hi*hi
			}
			out[4*i+g] = s[0] | s[1]<<16 | s[2]<<32 | s[3]<<48
		}
	}
}

// checkQ5KSums holds ggmlSumsQ5_K (the vector loop where it runs) and its Go
// twin to the plain twin, word for word, and wants no word written past the
// whole super-blocks.
func checkQ5KSums(t *testing.T, what string, src []byte) {
	t.Helper()
	n := len(src) / 176 * 4
	const sentinel = 0x5a5a5a5a5a5a5a5a
	want := make([]uint64, n+4)
	for i := range want {
		want[i] = sentinel
	}
	q5kSumsPlain(src, want)
	save := ggmlSumsQ5_KAsm512OK
	defer func() { ggmlSumsQ5_KAsm512OK = save }()
	for _, f := range []struct {
		name   string
		avx512 bool
		sums   func(src []byte, out []uint64)
	}{{"ggmlSumsQ5_K (AVX-512)", true, ggmlSumsQ5_K}, {"ggmlSumsQ5_K", false, ggmlSumsQ5_K}, {"ggmlSumsQ5_KGo", false, ggmlSumsQ5_KGo}} {
		got := make([]uint64, n+4)
		for i := range got {
			got[i] = sentinel
		}
		ggmlSumsQ5_KAsm512OK = save && f.avx512
		f.sums(src, got)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s %s (%d bytes): word %d is %#016x, the plain twin's %#016x", f.name, what, len(src), i, got[i], want[i])
			}
		}
	}
}

// TestGGMLSumsQ5_K holds the Q5_K code sums to their plain twin on random
// bytes at several alignments and lengths (a trailing partial super-block
// included), adversarial passes, and super-blocks whose every byte is one
// value (each of the 256: every code 0 to 31).
func TestGGMLSumsQ5_K(t *testing.T) {
	rng := rand.New(rand.NewPCG(83, 84))
	buf := randomBits(rng, 70*176+64)
	for align := 0; align < 64; align += 7 {
		for _, blocks := range []int{0, 1, 2, 3, 17, 64} {
			for _, extra := range []int{0, 1, 175} {
				checkQ5KSums(t, "random", buf[align:align+blocks*176+extra])
			}
		}
	}
	for round := 0; round < 20; round++ {
		checkQ5KSums(t, "adversarial", adversarialPass(rng, ggml.Q5_K, 1+rng.IntN(ggmlSumsBatch/4)))
	}
	for v := 0; v < 256; v++ {
		checkQ5KSums(t, "uniform", bytes.Repeat([]byte{byte(v)}, 3*176))
	}
}

// FuzzGGMLSumsQ5_K holds the Q5_K code sums to their plain twin on
// arbitrary bytes.
func FuzzGGMLSumsQ5_K(f *testing.F) {
	f.Add(make([]byte, 176))
	f.Add(bytes.Repeat([]byte{0xff, 0x10, 0x0f}, 130))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 176*ggmlSumsBatch/4 {
			data = data[:176*ggmlSumsBatch/4]
		}
		checkQ5KSums(t, "fuzz", data)
	})
}

// TestGGMLQ5KFast holds Q5_K's whole-super-block fold (q5kFastVec, its
// vector loop, and q5kFast, in Go) to the sub-block one (q5kSubs alone), bit
// for bit, on weight-like, random,
// adversarial and zero-rich passes, both to ggml's reference and to the
// dequantizing path it replaces; and q5kFast must take most weight-like
// super-blocks and find the zeros.
func TestGGMLQ5KFast(t *testing.T) {
	needGGMLSumsAsm(t) // q4kCoreAsm runs where the sums' vector loops do
	defer func() { q5kFastOn, q5kCoreOn = true, true }()
	rng := rand.New(rand.NewPCG(85, 86))
	dt, _ := formats.DTypeOfGGML(ggml.Q5_K)
	per := ggmlPassElems / 256
	var g ggmlScratch
	var vals [blockElems]float64
	check := func(what string, src []byte) {
		t.Helper()
		q5kFastOn = true
		got, gotOK := intQ5_K(src)
		q5kFastOn = false
		want, wantOK := intQ5_K(src)
		if gotOK != wantOK || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: fast %v %+v, by sub-blocks %v %+v", what, gotOK, got, wantOK, want)
		}
		// q5kFastVec's vector loop against q5kFast in Go, bit for bit
		q5kFastOn, q5kCoreOn = true, false
		goAcc, goOK := intQ5_K(src)
		q5kCoreOn = true
		if gotOK != goOK || !reflect.DeepEqual(got, goAcc) {
			t.Fatalf("%s: vector loop %v %+v, Go %v %+v", what, gotOK, got, goOK, goAcc)
		}
		if gotOK {
			checkIntAcc(t, "Q5_K "+what, got, ReferenceStats(dt, src), 1e-10)
			if len(src) <= per*176 { // the dequantizing path takes a pass at most
				checkIntAcc(t, "Q5_K "+what+" (dequantizing path)", got, g.dequantStats(dt, ggml.Q5_K, src, &vals), 1e-10)
			}
		}
	}
	eachSuperPass(rng, ggml.Q5_K, per, q5kZeroPass, check)
	src := quantizeLike(rng, ggml.Q5_K, 64, 0, 0.02)
	var sums [ggmlSumsBatch]uint64
	ggmlSumsQ5_K(src, sums[:])
	took := 0
	for i := 0; i < 64; i++ {
		f := newIntFold()
		b := (*[176]byte)(src[176*i:])
		if f.q5kFast(b, binary.LittleEndian.Uint16(b[0:]), binary.LittleEndian.Uint16(b[2:]), (*[4]uint64)(sums[4*i:])) {
			took++
		}
	}
	if took < 60 {
		t.Errorf("q5kFast took %d of 64 weight-like super-blocks", took)
	}
	zeros := 0
	for round := 0; round < 20; round++ {
		if a, ok := intQ5_K(q5kZeroPass(rng, 16)); ok {
			zeros += int(a.Zeros)
		}
	}
	if zeros == 0 {
		t.Errorf("q5kZeroPass made no zero values")
	}
}
