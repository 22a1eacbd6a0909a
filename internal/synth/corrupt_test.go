package synth_test

import (
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// writeMixed writes a file with one 40-element tensor of each float dtype,
// filled with random bytes that decode to finite values.
func writeMixed(t *testing.T) (string, []formats.DType) {
	t.Helper()
	var dts []formats.DType
	var specs []formats.TensorSpec
	for _, d := range formats.AllDTypes() {
		if d.IsFloat() {
			dts = append(dts, d)
			specs = append(specs, formats.TensorSpec{Name: string(d), DType: d, Shape: []uint64{40}})
		}
	}
	path := filepath.Join(t.TempDir(), "mixed.safetensors")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := formats.NewWriter(f, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	for _, s := range w.Order() {
		n, _ := s.ByteLen()
		b := make([]byte, n)
		width := s.DType.Size()
		if s.DType == formats.C64 {
			width = 4
		}
		usable := func() bool {
			for i := 0; i < formats.ElementCount(s.DType, len(b)); i++ {
				v := formats.Element(s.DType, b, i)
				if math.IsNaN(v) || math.IsInf(v, 0) || v == 0 {
					return false
				}
			}
			return true
		}
		for {
			r.Read(b)
			for i := width - 1; width >= 2 && i < len(b); i += width {
				b[i] &^= 0x40 // top exponent bit clear: finite, magnitude below 2
			}
			if usable() {
				break
			}
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path, dts
}

// span is the byte range of element i of tensor ten in its file.
func span(ten *formats.Tensor, i int) [2]int {
	bits := ten.DType.Bits()
	if ten.DType == formats.C64 {
		bits = 32
	}
	first := i * bits / 8
	last := ((i+1)*bits - 1) / 8
	return [2]int{int(ten.Offset) + first, last - first + 1}
}

func TestSetValuesEveryFloatDType(t *testing.T) {
	path, dts := writeMixed(t)
	for _, dt := range dts {
		before := readFile(t, path)
		c := openClean(t, path)
		ten := c.Tensor(string(dt))
		want := map[int]float64{3: math.NaN(), 17: 0.5, 39: -1}
		if math.IsInf(dt.MaxFinite(), 0) || dt.MaxFinite() > 1e30 {
			want[5] = math.Inf(1)
			want[6] = math.Inf(-1)
			want[7] = math.Ldexp(1, 100)
		}
		if dt == formats.F8_E8M0 { // unsigned, powers of two only
			want = map[int]float64{3: math.NaN(), 17: 0.5, 39: 1024}
		}
		hasNaN := false
		for p := 0; p < 1<<min(dt.Bits(), 16); p++ {
			var b [2]byte
			b[0], b[1] = byte(p), byte(p>>8)
			if dt.Bits() <= 16 && math.IsNaN(formats.Element(dt, b[:], 0)) {
				hasNaN = true
				break
			}
		}
		if dt.Bits() > 16 {
			hasNaN = true
		}
		if !hasNaN { // F4 and F6 have no NaN: asking for one is an error, and changes nothing
			if err := synth.SetValues(path, string(dt), map[int]float64{3: math.NaN()}); err == nil {
				t.Errorf("%s: NaN accepted by a dtype without NaN", dt)
			}
			if !equalBytes(before, readFile(t, path)) {
				t.Fatalf("%s: a refused SetValues changed the file", dt)
			}
			delete(want, 3)
			want[4] = dt.MaxFinite()
		}
		if err := synth.SetValues(path, string(dt), want); err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		after := readFile(t, path)
		var spans [][2]int
		for i := range want {
			spans = append(spans, span(ten, i))
		}
		sameExcept(t, before, after, spans)
		data := tensorData(t, openCleanFile(t, path), string(dt))
		for i, v := range want {
			got := formats.Element(dt, data, i)
			if !(got == v || math.IsNaN(v) && math.IsNaN(got)) {
				t.Errorf("%s: element %d is %g, want %g", dt, i, got, v)
			}
		}
	}
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }

// openCleanFile opens a file that may hold non-finite values (still a clean format).
func openCleanFile(t *testing.T, path string) *formats.Checkpoint {
	t.Helper()
	return openClean(t, path)
}

func TestSetValuesRefusesWhatTheDTypeCannotHold(t *testing.T) {
	path, _ := writeMixed(t)
	before := readFile(t, path)
	for dt, v := range map[formats.DType]float64{
		formats.F8_E4M3: math.Inf(1), formats.F8_E4M3FNUZ: math.Inf(-1),
		formats.F16: 1e6, formats.BF16: 1e39, formats.F8_E5M2: 1e6,
	} {
		if err := synth.SetValues(path, string(dt), map[int]float64{0: v}); err == nil {
			t.Errorf("%s accepted %g", dt, v)
		}
	}
	if err := synth.SetValues(path, "no such tensor", map[int]float64{0: 1}); err == nil {
		t.Error("a missing tensor was accepted")
	}
	if err := synth.SetValues(path, string(formats.F32), map[int]float64{40: 1}); err == nil {
		t.Error("an element past the end was accepted")
	}
	if !equalBytes(before, readFile(t, path)) {
		t.Fatal("refused injections changed the file")
	}
}

func TestFlipExponentBit(t *testing.T) {
	dir := writeTiny(t, synth.Options{Seed: 9})
	name := "model.layers.1.mlp.up_proj.weight"
	c := openClean(t, dir)
	old := values(t, c, name)
	before := readFile(t, c.Tensor(name).File.Path)
	if err := synth.FlipExponentBit(dir, name, 11); err != nil {
		t.Fatal(err)
	}
	c = openClean(t, dir)
	now := values(t, c, name)
	sameExcept(t, before, readFile(t, c.Tensor(name).File.Path), [][2]int{span(c.Tensor(name), 11)})
	// BF16 exponent bias 127: flipping the top exponent bit of a value below 2
	// multiplies its magnitude by exactly 2^128.
	if math.Abs(old[11]) >= 2 || now[11] != old[11]*math.Ldexp(1, 128) {
		t.Errorf("element 11: %g became %g, want ×2^128", old[11], now[11])
	}
	// And flipping it back restores it.
	if err := synth.FlipExponentBit(dir, name, 11); err != nil {
		t.Fatal(err)
	}
	if !equalBytes(before, readFile(t, c.Tensor(name).File.Path)) {
		t.Error("two flips did not restore the file")
	}
	path, dts := writeMixed(t)
	for _, dt := range dts {
		// Element 2 of every dtype: its raw bits must differ in exactly the top
		// exponent bit (the bit below the sign; E8M0 has no sign).
		ten := openClean(t, path).Tensor(string(dt))
		sp := span(ten, 2)
		before := readFile(t, path)
		if err := synth.FlipExponentBit(path, string(dt), 2); err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		after := readFile(t, path)
		sameExcept(t, before, after, [][2]int{sp})
		bits := dt.Bits()
		if dt == formats.C64 {
			bits = 32
		}
		top := bits - 2
		if dt == formats.F8_E8M0 {
			top = 7
		}
		var x uint64
		for k := 0; k < sp[1]; k++ {
			x |= uint64(before[sp[0]+k]^after[sp[0]+k]) << (8 * k)
		}
		first := 2 * bits % 8 // bit offset of the element within its first byte
		if x != 1<<(first+top) {
			t.Errorf("%s: flipped bits %#x, want only bit %d of the element", dt, x, top)
		}
	}
}

func TestScaleTensor(t *testing.T) {
	dir := writeTiny(t, synth.Options{Seed: 4, DType: formats.BF16})
	name := "model.layers.2.self_attn.o_proj.weight"
	c := openClean(t, dir)
	old := values(t, c, name)
	other := tensorData(t, c, "model.layers.2.self_attn.q_proj.weight")
	if err := synth.ScaleTensor(dir, name, 100); err != nil {
		t.Fatal(err)
	}
	c = openClean(t, dir)
	now := values(t, c, name)
	for i := range old {
		want := old[i] * 100
		if math.Abs(now[i]-want) > math.Abs(want)*math.Ldexp(1, -8) {
			t.Fatalf("element %d: %g × 100 = %g, not within half a bf16 step of %g", i, old[i], now[i], want)
		}
	}
	if !equalBytes(other, tensorData(t, c, "model.layers.2.self_attn.q_proj.weight")) {
		t.Error("another tensor changed")
	}
	// Exact in F32 by a power of two, for every packed dtype too.
	path, dts := writeMixed(t)
	for _, dt := range dts {
		if dt == formats.F8_E8M0 {
			continue
		}
		mc := openClean(t, path)
		a := tensorData(t, mc, string(dt))
		if err := synth.ScaleTensor(path, string(dt), 0.5); err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		b := tensorData(t, openClean(t, path), string(dt))
		n := 40
		if dt == formats.C64 {
			n = 80
		}
		for i := 0; i < n; i++ {
			x, y := formats.Element(dt, a, i), formats.Element(dt, b, i)
			if dt.Bits() >= 16 && x/2 >= dt.MinNormal() && y != x/2 {
				t.Errorf("%s element %d: %g / 2 = %g", dt, i, x, y)
			}
			if math.Abs(y) > math.Abs(x) {
				t.Errorf("%s element %d: %g halved grew to %g", dt, i, x, y)
			}
		}
	}
	// Overflow is refused before anything is written.
	before := readFile(t, path)
	if err := synth.ScaleTensor(path, string(formats.F16), 1e9); err == nil {
		t.Error("F16 × 1e9 accepted")
	}
	if !equalBytes(before, readFile(t, path)) {
		t.Error("a refused scaling changed the file")
	}
}

func TestFileLevelInjectors(t *testing.T) {
	fileErr := func(dir string) error {
		t.Helper()
		c, err := formats.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		var errs []error
		for _, p := range c.AllProblems() {
			if p.Severity == formats.SevError {
				errs = append(errs, p.Err)
			}
		}
		return errors.Join(errs...)
	}

	dir := writeTiny(t, synth.Options{Seed: 1})
	if err := synth.Truncate(filepath.Join(dir, "model.safetensors"), 100); err != nil {
		t.Fatal(err)
	}
	if err := fileErr(dir); !errors.Is(err, formats.ErrTruncated) {
		t.Errorf("Truncate: %v", err)
	}
	if err := synth.Truncate(filepath.Join(dir, "model.safetensors"), 1<<40); err == nil {
		t.Error("cutting more than the file holds was accepted")
	}

	dir = writeTiny(t, synth.Options{Seed: 1})
	p := filepath.Join(dir, "model.safetensors")
	size := len(readFile(t, p))
	moved, err := synth.OverlapOffsets(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := fileErr(dir); !errors.Is(err, formats.ErrInvalidOffset) {
		t.Errorf("OverlapOffsets: %v", err)
	} else {
		var fe *formats.Error
		if errors.As(err, &fe) && fe.Tensor != moved {
			t.Errorf("OverlapOffsets moved %q, the reader blames %q", moved, fe.Tensor)
		}
	}
	if len(readFile(t, p)) != size {
		t.Error("OverlapOffsets changed the file size")
	}

	dir = writeTiny(t, synth.Options{Seed: 1, Shards: 2})
	if err := synth.WriteLFSPointer(filepath.Join(dir, synth.ShardName(2, 2))); err != nil {
		t.Fatal(err)
	}
	if err := fileErr(dir); !errors.Is(err, formats.ErrLFSPointer) {
		t.Errorf("WriteLFSPointer: %v", err)
	}

	dir = writeTiny(t, synth.Options{Seed: 1, Shards: 3})
	removed, err := synth.RemoveShard(dir, 2)
	if err != nil || removed != synth.ShardName(2, 3) {
		t.Fatalf("RemoveShard: %q %v", removed, err)
	}
	if err := fileErr(dir); !errors.Is(err, formats.ErrMissingShard) {
		t.Errorf("RemoveShard: %v", err)
	}
	if _, err := synth.RemoveShard(dir, 4); err == nil {
		t.Error("shard 4 of 3 removed")
	}

	dir = writeTiny(t, synth.Options{Seed: 1, Shards: 2})
	escaped, err := synth.EscapeIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := fileErr(dir); !errors.Is(err, formats.ErrUnsafePath) {
		t.Errorf("EscapeIndex: %v", err)
	}
	ix, err := formats.ReadIndex(filepath.Join(dir, synth.IndexName))
	if err != nil || ix.WeightMap[escaped] == "" || ix.WeightMap[escaped][:3] != "../" {
		t.Errorf("EscapeIndex: %q maps to %q (%v)", escaped, ix.WeightMap[escaped], err)
	}
	if _, err := synth.EscapeIndex(writeTiny(t, synth.Options{Seed: 1})); err == nil {
		t.Error("EscapeIndex on a single-file checkpoint succeeded")
	}
}
