package inspect

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// ggmlSumsCase is one type's quant sums: the vector loop (the Go twin where
// none is built), the twin, and how many words a block gets; avx512 says
// whether the Q4_K, Q5_K and Q6_K AVX-512 loops run (ggmlSumsQ4_KAsm512OK,
// ggmlSumsQ5_KAsm512OK and ggmlSumsQ6_KAsm512OK while vec runs).
type ggmlSumsCase struct {
	ty        ggml.Type
	avx512    bool
	vec, twin func(src []byte, out []uint64)
	words     int
}

func ggmlSumsCases() []ggmlSumsCase {
	return []ggmlSumsCase{
		{ggml.Q4_K, true, ggmlSumsQ4_KVec, ggmlSumsQ4_KGo, 4},
		{ggml.Q4_K, false, ggmlSumsQ4_KVec, ggmlSumsQ4_KGo, 4},
		{ggml.Q5_1, false, ggmlSumsQ5_1Vec, ggmlSumsQ5_1Go, 1},
		{ggml.Q5_K, true, ggmlSumsQ5_KVec, ggmlSumsQ5_KGo, 4},
		{ggml.Q5_K, false, ggmlSumsQ5_KVec, ggmlSumsQ5_KGo, 4},
		{ggml.Q6_K, true, ggmlSumsQ6_KVec, ggmlSumsQ6_KGo, 16},
		{ggml.Q6_K, false, ggmlSumsQ6_KVec, ggmlSumsQ6_KGo, 16},
		{ggml.Q2_K, false, ggmlSumsQ2_KVec, ggmlSumsQ2_KGo, 8},
		{ggml.IQ4_NL, false, ggmlSumsIQ4_NLVec, ggmlSumsIQ4_NLGo, 1},
		{ggml.IQ4_XS, false, ggmlSumsIQ4_XSVec, ggmlSumsIQ4_XSGo, 8},
		{ggml.Q4_1, false, ggmlSumsQ4_1Vec, ggmlSumsQ4_1Go, 1},
	}
}

// needGGMLSumsAsm stops a test of the vector loops on an x86-64 build whose
// CPU cannot run them.
func needGGMLSumsAsm(t *testing.T) {
	t.Helper()
	if ggmlSumsAsmBuilt && !ggmlSumsAsmOK {
		testenv.Missing(t, "this CPU lacks AVX2 or POPCNT, so the quant sums' vector loops cannot run", "run on an x86-64 CPU with AVX2")
	}
}

// checkGGMLSums runs the vector loop and the twin on src and wants the same
// words, and no word written past the whole blocks.
func checkGGMLSums(t *testing.T, c ggmlSumsCase, what string, src []byte) {
	t.Helper()
	tr, _ := c.ty.Traits()
	n := len(src) / tr.BlockBytes * c.words
	const sentinel = 0x5a5a5a5a5a5a5a5a
	got, want := make([]uint64, n+4), make([]uint64, n+4)
	for i := range got {
		got[i], want[i] = sentinel, sentinel
	}
	save, save5, save6 := ggmlSumsQ4_KAsm512OK, ggmlSumsQ5_KAsm512OK, ggmlSumsQ6_KAsm512OK
	ggmlSumsQ4_KAsm512OK, ggmlSumsQ5_KAsm512OK, ggmlSumsQ6_KAsm512OK = save && c.avx512, save5 && c.avx512, save6 && c.avx512
	c.vec(src, got)
	ggmlSumsQ4_KAsm512OK, ggmlSumsQ5_KAsm512OK, ggmlSumsQ6_KAsm512OK = save, save5, save6
	c.twin(src, want)
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%v (AVX-512 %v) %s (%d bytes): word %d is %#016x, the twin's %#016x", c.ty, c.avx512, what, len(src), i, got[i], want[i])
		}
	}
}

// TestGGMLSumsAsm holds the quant sums' vector loops to their Go twins word
// for word: on random bytes at every alignment and length (with trailing
// bytes of a partial block), on adversarial passes, and on blocks whose
// every quant byte is one value (each of the 256, so every extreme quant and
// nibble).
func TestGGMLSumsAsm(t *testing.T) {
	needGGMLSumsAsm(t)
	if ggmlSumsAsmBuilt && (!ggmlSumsQ4_KAsm512OK || !ggmlSumsQ5_KAsm512OK || !ggmlSumsQ6_KAsm512OK) {
		testenv.Missing(t, "this CPU lacks AVX-512 (F, BW), so the Q4_K, Q5_K and Q6_K sums' AVX-512 loops cannot run", "run on an x86-64 CPU with AVX-512")
	}
	rng := rand.New(rand.NewPCG(61, 62))
	for _, c := range ggmlSumsCases() {
		tr, _ := c.ty.Traits()
		buf := randomBits(rng, 70*tr.BlockBytes+64)
		for align := 0; align < 64; align++ {
			for _, blocks := range []int{0, 1, 2, 3, 5, 8, 17, 64} {
				for _, extra := range []int{0, 1, tr.BlockBytes - 1} {
					checkGGMLSums(t, c, "random", buf[align:align+blocks*tr.BlockBytes+extra])
				}
			}
		}
		for round := 0; round < 20; round++ {
			checkGGMLSums(t, c, "adversarial", adversarialPass(rng, c.ty, 1+rng.IntN(ggmlSumsBatch)))
		}
		for v := 0; v < 256; v++ {
			src := make([]byte, 3*tr.BlockBytes)
			for j := range src {
				src[j] = byte(v)
			}
			checkGGMLSums(t, c, "uniform", src)
		}
	}
}

// TestGGMLSupersQ6_K holds the Q6_K super-block sums' vector loop to its Go
// twin: on random bytes (every scale byte, so sc = −128, 0 and 127 among
// them), adversarial passes, and super-blocks whose every code and scale
// byte is one value (each of the 256), at several lengths.
func TestGGMLSupersQ6_K(t *testing.T) {
	needGGMLSumsAsm(t)
	rng := rand.New(rand.NewPCG(69, 70))
	check := func(what string, src []byte) {
		t.Helper()
		n := len(src) / 210
		words := make([]uint64, 16*n)
		ggmlSumsQ6_KGo(src, words)
		got, want := make([]q6kSuper, n+1), make([]q6kSuper, n+1)
		got[n], want[n] = q6kSuper{s1: 7}, q6kSuper{s1: 7} // nothing written past the blocks
		ggmlSupersQ6_KVec(src, words, got)
		ggmlSupersQ6_KGo(src, words, want)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s (%d super-blocks): super-block %d is %+v, the twin's %+v", what, n, i, got[i], want[i])
			}
		}
	}
	eachQ6KPass(rng, check, "uniform codes", func(src []byte) {
		for i := 0; i < 2; i++ {
			for j := 192; j < 208; j++ {
				src[210*i+j] = byte(rng.IntN(256))
			}
		}
	})
}

// eachQ6KPass calls check on the Q6_K passes the vector loops' tests share:
// random bytes and adversarial passes of several lengths, and two
// super-blocks whose every code and scale byte is v (each of the 256), then
// the same again after vary has changed some of their bytes (named varied).
func eachQ6KPass(rng *rand.Rand, check func(what string, src []byte), varied string, vary func(src []byte)) {
	for _, n := range []int{0, 1, 2, 3, 16, 17} {
		for round := 0; round < 20; round++ {
			check("random", randomBits(rng, 210*n+rng.IntN(210)))
			check("adversarial", adversarialPass(rng, ggml.Q6_K, n))
		}
	}
	for v := 0; v < 256; v++ {
		src := randomBits(rng, 2*210)
		for i := 0; i < 2; i++ {
			for j := 0; j < 208; j++ {
				src[210*i+j] = byte(v)
			}
		}
		check("uniform", src)
		vary(src)
		check(varied, src)
	}
}

// TestGGMLExtremesQ6_K holds the Q6_K super-block extremes' AVX-512 loop to
// its Go twin on random bytes, adversarial passes and super-blocks whose
// every code and scale byte is one value (each of the 256), with one code
// or scale off the rest.
func TestGGMLExtremesQ6_K(t *testing.T) {
	needGGMLSumsAsm(t)
	if ggmlSumsAsmBuilt && !ggmlExtremesQ6_KAsmOK {
		testenv.Missing(t, "this CPU lacks AVX-512 (F, BW), so the Q6_K extremes' vector loop cannot run", "run on an x86-64 CPU with AVX-512")
	}
	rng := rand.New(rand.NewPCG(73, 74))
	check := func(what string, src []byte) {
		t.Helper()
		n := len(src) / 210
		got, want := make([][2]int32, n+1), make([][2]int32, n+1)
		got[n], want[n] = [2]int32{7, 7}, [2]int32{7, 7} // nothing written past the blocks
		ggmlExtremesQ6_KVec(src, got)
		ggmlExtremesQ6_KGo(src, want)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s (%d super-blocks): super-block %d is %v, the twin's %v", what, n, i, got[i], want[i])
			}
		}
	}
	eachQ6KPass(rng, check, "uniform, one byte off", func(src []byte) {
		src[rng.IntN(192)] = byte(rng.IntN(256))
		src[192+rng.IntN(16)] = byte(rng.IntN(256))
	})
	// intQ6_K with the super-blocks' extremes from the loop and sub-block by
	// sub-block: the same accumulators, bit for bit.
	save := ggmlExtremesQ6_KAsmOK
	defer func() { ggmlExtremesQ6_KAsmOK = save }()
	for round := 0; round < 60; round++ {
		blocks := 1 + rng.IntN(3*ggmlSumsBatch/16)
		for _, src := range [][]byte{quantizeLike(rng, ggml.Q6_K, blocks, 0, 0.02), quantizeLike(rng, ggml.Q6_K, blocks, 0.01, 0.02), adversarialPass(rng, ggml.Q6_K, blocks)} {
			ggmlExtremesQ6_KAsmOK = save
			got, gotOK := intQ6_K(src)
			ggmlExtremesQ6_KAsmOK = false
			want, wantOK := intQ6_K(src)
			if gotOK != wantOK || !reflect.DeepEqual(got, want) {
				t.Fatalf("intQ6_K of %d super-blocks: with the loop's extremes %v %+v, sub-block by sub-block %v %+v", blocks, gotOK, got, wantOK, want)
			}
		}
	}
}

// TestGGMLIntKernelsSumsTwin runs the integer kernels with the vector loops
// (the quant sums, the Q8_0 and Q5_0 folds, Q6_K's super-block sums and
// extremes; AVX-512 where it runs) and with their Go twins: the accumulators must be identical, bit for
// bit, and the kernel must take or hand back the same passes.
func TestGGMLIntKernelsSumsTwin(t *testing.T) {
	needGGMLSumsAsm(t)
	save, saveQ8 := ggmlSumsAsmOK, ggmlFoldQ8_0AsmOK
	save512, saveQ6, saveQ4K, saveQ6K := ggmlFoldQ8_0Asm512OK, ggmlExtremesQ6_KAsmOK, ggmlSumsQ4_KAsm512OK, ggmlSumsQ6_KAsm512OK
	saveQ5K := ggmlSumsQ5_KAsm512OK
	defer func() {
		ggmlSumsAsmOK, ggmlFoldQ8_0AsmOK = save, saveQ8
		ggmlFoldQ8_0Asm512OK, ggmlExtremesQ6_KAsmOK, ggmlSumsQ4_KAsm512OK, ggmlSumsQ6_KAsm512OK = save512, saveQ6, saveQ4K, saveQ6K
		ggmlSumsQ5_KAsm512OK = saveQ5K
	}()
	vec := func(on bool) {
		ggmlSumsAsmOK, ggmlFoldQ8_0AsmOK = save && on, saveQ8 && on
		ggmlFoldQ8_0Asm512OK, ggmlExtremesQ6_KAsmOK = save512 && on, saveQ6 && on
		ggmlSumsQ4_KAsm512OK, ggmlSumsQ6_KAsm512OK = saveQ4K && on, saveQ6K && on
		ggmlSumsQ5_KAsm512OK = saveQ5K && on
	}
	rng := rand.New(rand.NewPCG(63, 64))
	for _, ty := range intKernelTypes() {
		tr, _ := ty.Traits()
		per := ggmlPassElems / tr.BlockElems
		for round := 0; round < 30; round++ {
			// up to a pass, and past two batches of words
			blocks := []int{1, 3, per - 1, per, 2*ggmlSumsBatch + 3}[round%5]
			for _, src := range [][]byte{quantizeLike(rng, ty, blocks, 0, 0.02), quantizeLike(rng, ty, blocks, 0.01, 0.02), adversarialPass(rng, ty, blocks)} {
				vec(true)
				got, gotOK := ggmlIntKernels[ty](src)
				vec(false)
				want, wantOK := ggmlIntKernels[ty](src)
				if gotOK != wantOK || !reflect.DeepEqual(got, want) {
					t.Fatalf("%v: with the vector sums %v %+v, with the tables %v %+v", ty, gotOK, got, wantOK, want)
				}
			}
		}
	}
	// The engine's path: Stats of a whole chunk either way.
	vec(true)
	for _, ty := range intKernelTypes() {
		tr, _ := ty.Traits()
		dt, _ := formats.DTypeOfGGML(ty)
		src := quantizeLike(rng, ty, 3*ggmlPassElems/tr.BlockElems+5, 0, 0.02)
		if ty == ggml.MXFP4 {
			src[tr.BlockBytes*7] = 255 // d = 2^127, infinities: one pass dequantized
		} else {
			binary.LittleEndian.PutUint16(src[tr.BlockBytes*7+tr.Scales[0]:], 0x7e00) // one pass dequantized
		}
		vec(true)
		got := Stats(dt, src)
		vec(false)
		want := Stats(dt, src)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%v: Stats with the vector sums %+v, with the tables %+v", ty, got, want)
		}
	}
}

// FuzzGGMLSums holds the vector quant sums to their twins on arbitrary bytes.
func FuzzGGMLSums(f *testing.F) {
	f.Add(uint8(0), make([]byte, 144))
	f.Add(uint8(1), []byte{0x00, 0x80, 1, 2, 3, 0x88, 0xff, 0x0f, 0xf0, 0x7f, 0x80, 0x08, 0x80, 0x00, 0xff, 0xff, 0x11, 0x22})
	f.Add(uint8(2), make([]byte, 300))
	f.Add(uint8(3), make([]byte, 421))
	cases := ggmlSumsCases()
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		if ggmlSumsAsmBuilt && !ggmlSumsAsmOK {
			return // nothing to compare: the vector loops cannot run here (TestGGMLSumsAsm says so)
		}
		checkGGMLSums(t, cases[int(k)%len(cases)], "fuzz", data)
	})
}

// FuzzGGMLQ6KSupers holds Q6_K's super-block sums and extremes loops to their
// twins on arbitrary bytes.
func FuzzGGMLQ6KSupers(f *testing.F) {
	f.Add(make([]byte, 210))
	f.Add(make([]byte, 421))
	f.Fuzz(func(t *testing.T, src []byte) {
		if ggmlSumsAsmBuilt && !ggmlSumsAsmOK {
			return // nothing to compare: the vector loops cannot run here (TestGGMLSumsAsm says so)
		}
		n := len(src) / 210
		words := make([]uint64, 16*n)
		ggmlSumsQ6_KGo(src, words)
		got, want := make([]q6kSuper, n), make([]q6kSuper, n)
		ggmlSupersQ6_KVec(src, words, got)
		ggmlSupersQ6_KGo(src, words, want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("super-block sums %+v, the twin's %+v", got, want)
		}
		if ggmlExtremesQ6_KAsmOK {
			got, want := make([][2]int32, n), make([][2]int32, n)
			ggmlExtremesQ6_KVec(src, got)
			ggmlExtremesQ6_KGo(src, want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("super-block extremes %v, the twin's %v", got, want)
			}
		}
	})
}

// ggmlFoldCase is one type folded into lanes: the vector loop (the Go twin
// where none is built) and the twin; avx512 says whether Q8_0's AVX-512 loop
// takes its pairs of groups (ggmlFoldQ8_0Asm512OK while vec runs).
type ggmlFoldCase struct {
	ty        ggml.Type
	path      string
	avx512    bool
	vec, twin func(src []byte, l *q8Lanes) int
}

func ggmlFoldCases() []ggmlFoldCase {
	return []ggmlFoldCase{
		{ggml.Q8_0, "AVX-512 and AVX2", true, ggmlFoldQ8_0Vec, ggmlFoldQ8_0Go},
		{ggml.Q8_0, "AVX2", false, ggmlFoldQ8_0Vec, ggmlFoldQ8_0Go},
		{ggml.Q5_0, "AVX2", false, ggmlFoldQ5_0Vec, ggmlFoldQ5_0Go},
		{ggml.Q4_0, "AVX2", false, ggmlFoldQ4_0Vec, ggmlFoldQ4_0Go},
	}
}

// checkGGMLFold runs a fold's vector loop and its twin on src from the same
// lanes and wants the same groups folded and the same lanes, bit for bit.
func checkGGMLFold(t *testing.T, c ggmlFoldCase, what string, src []byte, l q8Lanes) {
	t.Helper()
	save := ggmlFoldQ8_0Asm512OK
	defer func() { ggmlFoldQ8_0Asm512OK = save }()
	ggmlFoldQ8_0Asm512OK = save && c.avx512
	got, want := l, l
	n, m := c.vec(src, &got), c.twin(src, &want)
	if n != m || !reflect.DeepEqual(got, want) {
		t.Fatalf("%v fold (%s) %s (%d bytes): %d groups, lanes %+v; the twin %d, %+v", c.ty, c.path, what, len(src), n, got, m, want)
	}
}

// q8StartLanes are lanes as a pass may hand them to the fold: fresh, or
// with sums, counts and extremes from earlier groups.
func q8StartLanes(rng *rand.Rand) q8Lanes {
	l := q8Lanes{lo: [4]float64{math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)}, hi: [4]float64{math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1)}}
	if rng.IntN(2) == 0 {
		lo, hi := -rng.Float64(), rng.Float64()
		for k := range l.sum {
			l.sum[k], l.sq[k], l.zeros[k] = rng.NormFloat64(), rng.Float64(), rng.Uint64N(1000)
			l.lo[k], l.hi[k] = lo, hi
		}
		l.neg, l.pos = rng.Uint64N(2), rng.Uint64N(2)
	}
	return l
}

// needGGMLFoldAsm stops a test of the fold loops on an x86-64 build whose
// CPU cannot run them.
func needGGMLFoldAsm(t *testing.T) {
	t.Helper()
	needGGMLSumsAsm(t)
	if ggmlSumsAsmBuilt && !ggmlFoldQ8_0AsmOK {
		testenv.Missing(t, "this CPU lacks F16C, so the Q8_0 and Q5_0 folds' vector loops cannot run", "run on an x86-64 CPU with AVX2 and F16C")
	}
}

// needGGMLFoldAsm512 stops a test of Q8_0's AVX-512 loop on an x86-64 build
// whose CPU cannot run it.
func needGGMLFoldAsm512(t *testing.T) {
	t.Helper()
	needGGMLFoldAsm(t)
	if ggmlSumsAsmBuilt && !ggmlFoldQ8_0Asm512OK {
		testenv.Missing(t, "this CPU lacks AVX-512 (F, BW, VL, DQ, VNNI), so the Q8_0 fold's AVX-512 loop cannot run", "run on an x86-64 CPU with AVX-512 VNNI")
	}
}

// TestGGMLFoldAsm holds the Q8_0 and Q5_0 folds' vector loops to their Go
// twins: on weight-like and adversarial blocks (zero, non-finite, negative
// and subnormal scales stop them where the twins stop), from fresh and used
// lanes, at every alignment.
func TestGGMLFoldAsm(t *testing.T) {
	needGGMLFoldAsm512(t)
	rng := rand.New(rand.NewPCG(65, 66))
	for _, c := range ggmlFoldCases() {
		tr, _ := c.ty.Traits()
		for round := 0; round < 300; round++ {
			groups := 1 + rng.IntN(70)
			var src []byte
			switch round % 3 {
			case 0:
				src = quantizeLike(rng, c.ty, 4*groups, 0, 0.02)
			case 1:
				src = adversarialPass(rng, c.ty, 4*groups)
			default: // weight-like, a few scales replaced by adversarial ones
				src = quantizeLike(rng, c.ty, 4*groups, 0.01, 0.02)
				for k := rng.IntN(8); k < 4*groups; k += 1 + rng.IntN(40) {
					binary.LittleEndian.PutUint16(src[tr.BlockBytes*k:], finiteF16[rng.IntN(len(finiteF16))])
				}
			}
			align := rng.IntN(32)
			buf := make([]byte, align+len(src))
			copy(buf[align:], src)
			checkGGMLFold(t, c, "random", buf[align:], q8StartLanes(rng))
		}
	}
}

// TestGGMLFoldQ8_0Pairs holds Q8_0's fold, with and without its AVX-512
// loop, to the Go twin where the pairs of groups matter: random quant bytes
// under random finite scales (subnormal and negative ones included), one
// zero, NaN or infinite scale in any of a pair's eight blocks or none, odd
// and even group counts; blocks whose every quant is one value (each of the
// 256); and whole passes through intQ8_0 (the tail blocks, the group a loop
// stopped at), whose accumulators must match the twin's bit for bit.
func TestGGMLFoldQ8_0Pairs(t *testing.T) {
	needGGMLFoldAsm512(t)
	rng := rand.New(rand.NewPCG(67, 68))
	bad := []uint16{0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0xfe01}
	randomBlocks := func(blocks int) []byte {
		src := randomBits(rng, 34*blocks)
		for k := 0; k < blocks; k++ {
			h := uint16(rng.Uint32()) &^ 0x4000 // finite
			if h&0x7fff == 0 {
				h |= 1
			}
			if rng.IntN(4) == 0 {
				h &= 0x83ff // subnormal
				h |= 1
			}
			binary.LittleEndian.PutUint16(src[34*k:], h)
		}
		return src
	}
	for _, c := range ggmlFoldCases()[:2] {
		for round := 0; round < 400; round++ {
			groups := 1 + rng.IntN(21)
			src := randomBlocks(4 * groups)
			if round%2 == 1 {
				k := rng.IntN(4 * groups)
				binary.LittleEndian.PutUint16(src[34*k:], bad[rng.IntN(len(bad))])
			}
			checkGGMLFold(t, c, "random quants", src, q8StartLanes(rng))
		}
		for v := 0; v < 256; v++ {
			src := randomBlocks(4 * (2 + v%3))
			for k := 0; k < len(src)/34; k++ {
				for j := 2; j < 34; j++ {
					src[34*k+j] = byte(v)
				}
			}
			checkGGMLFold(t, c, "uniform quants", src, q8StartLanes(rng))
		}
	}
	save, saveQ8 := ggmlFoldQ8_0Asm512OK, ggmlFoldQ8_0AsmOK
	defer func() { ggmlFoldQ8_0Asm512OK, ggmlFoldQ8_0AsmOK = save, saveQ8 }()
	for round := 0; round < 200; round++ {
		src := randomBlocks(1 + rng.IntN(120))
		if round%3 == 1 {
			k := rng.IntN(len(src) / 34)
			binary.LittleEndian.PutUint16(src[34*k:], bad[rng.IntN(2)]) // zero: folded by q8Group
		}
		ggmlFoldQ8_0Asm512OK, ggmlFoldQ8_0AsmOK = save, saveQ8
		got, gotOK := intQ8_0(src)
		ggmlFoldQ8_0Asm512OK = false
		avx2, avx2OK := intQ8_0(src)
		ggmlFoldQ8_0AsmOK = false
		want, wantOK := intQ8_0(src)
		if gotOK != wantOK || avx2OK != wantOK || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(avx2, want) {
			t.Fatalf("intQ8_0 of %d blocks: AVX-512 %v %+v, AVX2 %v %+v, the twin %v %+v", len(src)/34, gotOK, got, avx2OK, avx2, wantOK, want)
		}
	}
}

// FuzzGGMLFold holds the folds' vector loops to their twins on arbitrary
// bytes (any scale: a loop must stop where its twin stops).
func FuzzGGMLFold(f *testing.F) {
	f.Add(uint8(0), make([]byte, 136))
	f.Add(uint8(2), make([]byte, 88))
	f.Add(uint8(0), []byte{0x00, 0x3c, 0x80, 0x7f, 0x00, 0x01})
	cases := ggmlFoldCases()
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		if ggmlSumsAsmBuilt && !ggmlFoldQ8_0AsmOK {
			return // nothing to compare: the vector loops cannot run here (TestGGMLFoldAsm says so)
		}
		c := cases[int(k)%len(cases)]
		tr, _ := c.ty.Traits()
		src := data[:len(data)/(4*tr.BlockBytes)*(4*tr.BlockBytes)]
		checkGGMLFold(t, c, "fuzz", src, q8StartLanes(rand.New(rand.NewPCG(uint64(len(data)), 1))))
	})
}
