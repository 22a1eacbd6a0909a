package formats_test

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/x448/float16"

	"github.com/ckpt-tool/ckpt/formats"
)

// The 22 dtypes and their widths, as notes/format.md lists them.
var wantBits = map[formats.DType]int{
	"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
	"I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64,
	"I64": 64, "U64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}

func TestDTypeTable(t *testing.T) {
	all := formats.AllDTypes()
	if len(all) != 22 || len(wantBits) != 22 {
		t.Fatalf("%d dtypes", len(all))
	}
	// The reference enum order, which the writer sorts by.
	order := []formats.DType{"BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
		"F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"}
	for i, d := range all {
		if d != order[i] {
			t.Errorf("AllDTypes()[%d] = %s, want %s", i, d, order[i])
		}
		if !d.Valid() || d.Bits() != wantBits[d] {
			t.Errorf("%s: valid %v bits %d, want %d", d, d.Valid(), d.Bits(), wantBits[d])
		}
		if d.ByteAligned() != (wantBits[d]%8 == 0) || (d.ByteAligned() && d.Size() != wantBits[d]/8) || (!d.ByteAligned() && d.Size() != 0) {
			t.Errorf("%s: aligned %v size %d", d, d.ByteAligned(), d.Size())
		}
	}
	for _, bad := range []formats.DType{"", "f32", "F8", "F8_E4M3FN", "Q4_0", "PackedI4", "BOOL "} {
		if bad.Valid() {
			t.Errorf("%q is valid", bad)
		}
	}
	floats := map[formats.DType]bool{"F4": true, "F6_E2M3": true, "F6_E3M2": true, "F8_E5M2": true, "F8_E4M3": true,
		"F8_E8M0": true, "F8_E4M3FNUZ": true, "F8_E5M2FNUZ": true, "F16": true, "BF16": true, "F32": true, "F64": true, "C64": true}
	for _, d := range all {
		if d.IsFloat() != floats[d] {
			t.Errorf("%s: IsFloat %v", d, d.IsFloat())
		}
	}
	// C128 is known (its size and kind serve other containers) but is not a
	// safetensors dtype.
	if c := formats.C128; !c.Valid() || c.InSafetensors() || c.Bits() != 128 || c.Size() != 16 || c.Kind() != formats.KindComplex ||
		!c.IsFloat() || c.Part() != formats.F64 || formats.C64.Part() != formats.F32 || formats.BF16.Part() != formats.BF16 ||
		c.MaxFinite() != math.MaxFloat64 || c.MinNormal() != math.Ldexp(1, -1022) {
		t.Errorf("C128: valid %v safetensors %v bits %d kind %v part %s", c.Valid(), c.InSafetensors(), c.Bits(), c.Kind(), c.Part())
	}
	if k := formats.KnownDTypes(); len(k) != 23 || k[22] != formats.C128 {
		t.Errorf("KnownDTypes() = %v", k)
	}
	for _, d := range all {
		if !d.InSafetensors() {
			t.Errorf("%s is not a safetensors dtype", d)
		}
	}
	kinds := map[formats.DType]formats.Kind{"BOOL": formats.KindBool, "U8": formats.KindUnsigned, "I8": formats.KindSigned,
		"I16": formats.KindSigned, "U16": formats.KindUnsigned, "I32": formats.KindSigned, "U32": formats.KindUnsigned,
		"I64": formats.KindSigned, "U64": formats.KindUnsigned, "C64": formats.KindComplex}
	for d, k := range kinds {
		if d.Kind() != k {
			t.Errorf("%s: kind %v, want %v", d, d.Kind(), k)
		}
	}
}

// minifloatSpec describes an OCP FP8/MX format the way the specifications do.
type minifloatSpec struct {
	exp, man, bias int
	// special classifies a pattern per the spec: "inf+", "inf-", "nan" or "".
	special func(b uint32) string
}

// specValue is the value of a non-special pattern, straight from the definition
// (-1)^s × 2^(e-bias) × 1.m for normals and (-1)^s × 2^(1-bias) × 0.m for
// subnormals, computed with math.Pow and division.
func specValue(s minifloatSpec, b uint32) float64 {
	sign := 1.0
	if b>>(s.exp+s.man)&1 == 1 {
		sign = -1
	}
	e := int(b>>s.man) & (1<<s.exp - 1)
	m := float64(b & (1<<s.man - 1))
	frac := m / math.Pow(2, float64(s.man))
	if e == 0 {
		return sign * math.Pow(2, float64(1-s.bias)) * frac
	}
	return sign * math.Pow(2, float64(e-s.bias)) * (1 + frac)
}

var fp8Specs = map[formats.DType]minifloatSpec{
	// OCP 8-bit Floating Point Specification (OFP8) rev 1.0: E5M2 follows IEEE
	// (exponent 11111: mantissa 00 infinity, else NaN).
	formats.F8_E5M2: {5, 2, 15, func(b uint32) string {
		if b&0x7C == 0x7C {
			if b&3 == 0 {
				return map[bool]string{false: "inf+", true: "inf-"}[b&0x80 != 0]
			}
			return "nan"
		}
		return ""
	}},
	// OFP8 E4M3: no infinities; S.1111.111 is NaN, S.1111.000-110 are normals.
	formats.F8_E4M3: {4, 3, 7, func(b uint32) string {
		if b&0x7F == 0x7F {
			return "nan"
		}
		return ""
	}},
	// FNUZ variants (AMD/Graphcore, as in ONNX and ml_dtypes): bias one higher,
	// no infinities, no negative zero: 1.0000.000 (0x80) is the only NaN.
	formats.F8_E4M3FNUZ: {4, 3, 8, func(b uint32) string {
		if b == 0x80 {
			return "nan"
		}
		return ""
	}},
	formats.F8_E5M2FNUZ: {5, 2, 16, func(b uint32) string {
		if b == 0x80 {
			return "nan"
		}
		return ""
	}},
}

func checkValue(t *testing.T, d formats.DType, pattern uint32, got float64, class string, want float64) {
	t.Helper()
	switch class {
	case "nan":
		if !math.IsNaN(got) || formats.Classify(got) != formats.ClassNaN {
			t.Errorf("%s 0x%02X: got %v, want NaN", d, pattern, got)
		}
	case "inf+":
		if !math.IsInf(got, 1) || formats.Classify(got) != formats.ClassPosInf {
			t.Errorf("%s 0x%02X: got %v, want +Inf", d, pattern, got)
		}
	case "inf-":
		if !math.IsInf(got, -1) || formats.Classify(got) != formats.ClassNegInf {
			t.Errorf("%s 0x%02X: got %v, want -Inf", d, pattern, got)
		}
	default:
		if got != want || math.Signbit(got) != math.Signbit(want) || formats.Classify(got) != formats.ClassFinite {
			t.Errorf("%s 0x%02X: got %v, want %v", d, pattern, got, want)
		}
	}
}

// Every one of the 256 patterns of each 8-bit float, against the spec.
func TestFP8Exhaustive(t *testing.T) {
	for d, s := range fp8Specs {
		nan, inf, maxFinite := 0, 0, 0.0
		for b := uint32(0); b < 256; b++ {
			class := s.special(b)
			got := formats.Decode8(d, uint8(b))
			if el := formats.Element(d, []byte{byte(b)}, 0); math.Float64bits(el) != math.Float64bits(got) && !(math.IsNaN(el) && math.IsNaN(got)) {
				t.Errorf("%s 0x%02X: Element %v, Decode8 %v", d, b, el, got)
			}
			want := 0.0
			if class == "" {
				want = specValue(s, b)
				maxFinite = max(maxFinite, math.Abs(want))
			}
			checkValue(t, d, b, got, class, want)
			switch class {
			case "nan":
				nan++
			case "inf+", "inf-":
				inf++
			}
		}
		if d.MaxFinite() != maxFinite {
			t.Errorf("%s: MaxFinite %v, the spec's largest is %v", d, d.MaxFinite(), maxFinite)
		}
		t.Logf("%s: %d NaN patterns, %d infinities, max %v", d, nan, inf, maxFinite)
	}
	// Known values from the specifications' tables.
	known := []struct {
		d    formats.DType
		b    uint8
		want float64
	}{
		{formats.F8_E4M3, 0x7E, 448}, {formats.F8_E4M3, 0xFE, -448}, {formats.F8_E4M3, 0x08, 1.0 / 64}, {formats.F8_E4M3, 0x01, math.Pow(2, -9)},
		{formats.F8_E4M3, 0x38, 1}, {formats.F8_E4M3, 0x78, 256},
		{formats.F8_E5M2, 0x7B, 57344}, {formats.F8_E5M2, 0x04, math.Pow(2, -14)}, {formats.F8_E5M2, 0x01, math.Pow(2, -16)}, {formats.F8_E5M2, 0x3C, 1},
		{formats.F8_E4M3FNUZ, 0x7F, 240}, {formats.F8_E4M3FNUZ, 0x40, 1}, {formats.F8_E4M3FNUZ, 0x01, math.Pow(2, -10)}, {formats.F8_E4M3FNUZ, 0x00, 0},
		{formats.F8_E5M2FNUZ, 0x7F, 57344}, {formats.F8_E5M2FNUZ, 0x40, 1}, {formats.F8_E5M2FNUZ, 0x01, math.Pow(2, -17)},
		{formats.F8_E8M0, 0x7F, 1}, {formats.F8_E8M0, 0x80, 2}, {formats.F8_E8M0, 0x00, math.Pow(2, -127)}, {formats.F8_E8M0, 0xFE, math.Pow(2, 127)},
	}
	for _, k := range known {
		if got := formats.Decode8(k.d, k.b); got != k.want {
			t.Errorf("%s 0x%02X = %v, want %v", k.d, k.b, got, k.want)
		}
	}
	nans := map[formats.DType][]uint8{
		formats.F8_E4M3: {0x7F, 0xFF}, formats.F8_E5M2: {0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF},
		formats.F8_E4M3FNUZ: {0x80}, formats.F8_E5M2FNUZ: {0x80}, formats.F8_E8M0: {0xFF},
	}
	for d, list := range nans {
		for _, b := range list {
			if !math.IsNaN(formats.Decode8(d, b)) {
				t.Errorf("%s 0x%02X is not NaN", d, b)
			}
		}
	}
}

// OCP MX E8M0: an unsigned power of two 2^(b-127), 0xFF NaN, no zero, no sign.
func TestE8M0Exhaustive(t *testing.T) {
	for b := 0; b < 256; b++ {
		got := formats.Decode8(formats.F8_E8M0, uint8(b))
		if b == 0xFF {
			checkValue(t, formats.F8_E8M0, uint32(b), got, "nan", 0)
			continue
		}
		checkValue(t, formats.F8_E8M0, uint32(b), got, "", math.Pow(2, float64(b-127)))
	}
	if formats.F8_E8M0.MaxFinite() != math.Pow(2, 127) {
		t.Errorf("E8M0 MaxFinite %v", formats.F8_E8M0.MaxFinite())
	}
}

// All 65536 F16 patterns against x448/float16, an independent implementation.
func TestF16Exhaustive(t *testing.T) {
	maxFinite := 0.0
	for h := 0; h < 1<<16; h++ {
		ref := float64(float16.Frombits(uint16(h)).Float32())
		got := formats.F16ToFloat64(uint16(h))
		var b [2]byte
		binary.LittleEndian.PutUint16(b[:], uint16(h))
		if el := formats.Element(formats.F16, b[:], 0); math.Float64bits(el) != math.Float64bits(got) && !(math.IsNaN(el) && math.IsNaN(got)) {
			t.Fatalf("F16 0x%04X: Element %v, F16ToFloat64 %v", h, el, got)
		}
		class := ""
		switch {
		case math.IsNaN(ref):
			class = "nan"
		case math.IsInf(ref, 1):
			class = "inf+"
		case math.IsInf(ref, -1):
			class = "inf-"
		default:
			maxFinite = max(maxFinite, math.Abs(ref))
		}
		// IEEE binary16: exponent 11111 is Inf (mantissa 0) or NaN.
		if specNaN := h&0x7C00 == 0x7C00 && h&0x3FF != 0; specNaN != (class == "nan") {
			t.Fatalf("F16 0x%04X: the oracle and the IEEE rule disagree", h)
		}
		checkValue(t, formats.F16, uint32(h), got, class, ref)
	}
	if formats.F16.MaxFinite() != maxFinite || maxFinite != 65504 {
		t.Errorf("F16 MaxFinite %v, largest %v", formats.F16.MaxFinite(), maxFinite)
	}
	if formats.F16.MinNormal() != float64(float16.Frombits(0x0400).Float32()) {
		t.Errorf("F16 MinNormal %v", formats.F16.MinNormal())
	}
}

// All 65536 BF16 patterns: bfloat16 is the top half of an IEEE binary32, so the
// exponent field 0xFF (bits 0x7F80) is Inf (mantissa 0) or NaN.
func TestBF16Exhaustive(t *testing.T) {
	maxFinite := 0.0
	for h := 0; h < 1<<16; h++ {
		exp, man := h>>7&0xFF, h&0x7F
		class := ""
		if exp == 0xFF {
			class = "nan"
			if man == 0 {
				class = map[bool]string{false: "inf+", true: "inf-"}[h&0x8000 != 0]
			}
		}
		want := 0.0
		if class == "" {
			// The value from the definition, not from bit reinterpretation.
			sign := 1.0
			if h&0x8000 != 0 {
				sign = -1
			}
			if exp == 0 {
				want = sign * math.Pow(2, -126) * float64(man) / 128
			} else {
				want = sign * math.Pow(2, float64(exp-127)) * (1 + float64(man)/128)
			}
			maxFinite = max(maxFinite, math.Abs(want))
		}
		got := float64(formats.BF16ToFloat32(uint16(h)))
		var b [2]byte
		binary.LittleEndian.PutUint16(b[:], uint16(h))
		if el := formats.Element(formats.BF16, b[:], 0); math.Float64bits(el) != math.Float64bits(got) && !(math.IsNaN(el) && math.IsNaN(got)) {
			t.Fatalf("BF16 0x%04X: Element %v, BF16ToFloat32 %v", h, el, got)
		}
		checkValue(t, formats.BF16, uint32(h), got, class, want)
	}
	if formats.BF16.MaxFinite() != maxFinite {
		t.Errorf("BF16 MaxFinite %v, largest %v", formats.BF16.MaxFinite(), maxFinite)
	}
	if got := formats.BF16ToFloat32(0x3F80); got != 1 {
		t.Errorf("BF16 0x3F80 = %v", got)
	}
}

// OCP MX F4 (E2M1) and F6 (E2M3, E3M2): every pattern, no Inf or NaN.
func TestSubByteFloatsExhaustive(t *testing.T) {
	e2m1 := []float64{0, 0.5, 1, 1.5, 2, 3, 4, 6} // the MX specification's table
	for n := 0; n < 16; n++ {
		want := e2m1[n&7]
		if n&8 != 0 {
			want = -want
		}
		checkValue(t, formats.F4, uint32(n), formats.DecodeF4(uint8(n)), "", want)
	}
	specs := map[formats.DType]minifloatSpec{
		formats.F6_E2M3: {2, 3, 1, func(uint32) string { return "" }},
		formats.F6_E3M2: {3, 2, 3, func(uint32) string { return "" }},
	}
	limits := map[formats.DType][3]float64{ // max normal, min normal, min subnormal (MX spec table)
		formats.F6_E2M3: {7.5, 1, 0.125},
		formats.F6_E3M2: {28, 0.25, 0.0625},
		formats.F4:      {6, 1, 0.5},
	}
	for d, s := range specs {
		maxFinite, minSub := 0.0, math.Inf(1)
		for n := uint32(0); n < 64; n++ {
			want := specValue(s, n)
			checkValue(t, d, n, formats.DecodeF6(d, uint8(n)), "", want)
			maxFinite = max(maxFinite, math.Abs(want))
			if want > 0 {
				minSub = min(minSub, want)
			}
		}
		l := limits[d]
		if maxFinite != l[0] || d.MaxFinite() != l[0] || d.MinNormal() != l[1] || minSub != l[2] {
			t.Errorf("%s: max %v/%v, min normal %v, min subnormal %v; want %v", d, maxFinite, d.MaxFinite(), d.MinNormal(), minSub, l)
		}
	}
	if formats.F4.MaxFinite() != limits[formats.F4][0] || formats.F4.MinNormal() != limits[formats.F4][1] {
		t.Errorf("F4 limits %v %v", formats.F4.MaxFinite(), formats.F4.MinNormal())
	}
}

// Packing of sub-byte types: least-significant bits first.
func TestSubBytePacking(t *testing.T) {
	// F4: two per byte, element 0 in the low nibble.
	data := []byte{0x21, 0xF7}
	want := []float64{0.5, 1, 6, -6}
	for i, w := range want {
		if got := formats.Element(formats.F4, data, i); got != w {
			t.Errorf("F4 element %d = %v, want %v", i, got, w)
		}
	}
	// F6: four per three bytes, as a little-endian 24-bit word.
	for _, d := range []formats.DType{formats.F6_E2M3, formats.F6_E3M2} {
		vals := []uint32{0x01, 0x3F, 0x20, 0x15}
		w := vals[0] | vals[1]<<6 | vals[2]<<12 | vals[3]<<18
		packed := []byte{byte(w), byte(w >> 8), byte(w >> 16)}
		for i, v := range vals {
			if got, want := formats.Element(d, packed, i), formats.DecodeF6(d, uint8(v)); got != want {
				t.Errorf("%s element %d = %v, want %v", d, i, got, want)
			}
		}
	}
	if n := formats.ElementCount(formats.F6_E3M2, 3); n != 4 {
		t.Errorf("ElementCount F6 3 bytes = %d", n)
	}
	if n := formats.ElementCount(formats.F4, 3); n != 6 {
		t.Errorf("ElementCount F4 3 bytes = %d", n)
	}
}

func TestElementIntegersAndWideFloats(t *testing.T) {
	le := func(v uint64, n int) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, v)
		return b[:n]
	}
	cases := []struct {
		d    formats.DType
		data []byte
		want float64
	}{
		{formats.BOOL, []byte{1}, 1}, {formats.U8, []byte{255}, 255}, {formats.I8, []byte{0xFF}, -1}, {formats.I8, []byte{0x80}, -128},
		{formats.I16, le(0x8000, 2), -32768}, {formats.U16, le(0xFFFF, 2), 65535},
		{formats.I32, le(0xFFFFFFFE, 4), -2}, {formats.U32, le(0xFFFFFFFF, 4), 4294967295},
		{formats.I64, le(1<<63, 8), -9223372036854775808}, {formats.U64, le(1<<53, 8), 9007199254740992},
		{formats.F32, le(uint64(math.Float32bits(-1.5)), 4), -1.5}, {formats.F64, le(math.Float64bits(math.Pi), 8), math.Pi},
		{formats.F32, le(0x00000001, 4), math.Pow(2, -149)},
		{formats.C64, append(le(uint64(math.Float32bits(3)), 4), le(uint64(math.Float32bits(-4)), 4)...), 3},
	}
	for _, c := range cases {
		if got := formats.Element(c.d, c.data, 0); got != c.want {
			t.Errorf("%s %x = %v, want %v", c.d, c.data, got, c.want)
		}
	}
	c128 := append(le(math.Float64bits(math.Pi), 8), le(math.Float64bits(-math.E), 8)...)
	if re, im := formats.Element(formats.C128, c128, 0), formats.Element(formats.C128, c128, 1); re != math.Pi || im != -math.E {
		t.Errorf("C128 parts = %v, %v", re, im)
	}
	c64 := append(le(uint64(math.Float32bits(3)), 4), le(uint64(math.Float32bits(-4)), 4)...)
	if got := formats.Element(formats.C64, c64, 1); got != -4 {
		t.Errorf("C64 imaginary half = %v", got)
	}
	specials := []struct {
		d     formats.DType
		data  []byte
		class formats.FloatClass
	}{
		{formats.F32, le(0x7F800000, 4), formats.ClassPosInf}, {formats.F32, le(0xFF800000, 4), formats.ClassNegInf},
		{formats.F32, le(0x7FC00000, 4), formats.ClassNaN}, {formats.F32, le(0x7F800001, 4), formats.ClassNaN},
		{formats.F32, le(0xFFFFFFFF, 4), formats.ClassNaN}, {formats.F32, le(0x7F7FFFFF, 4), formats.ClassFinite},
		{formats.F64, le(0x7FF0000000000000, 8), formats.ClassPosInf}, {formats.F64, le(0x7FF0000000000001, 8), formats.ClassNaN},
		{formats.F64, le(0xFFF0000000000000, 8), formats.ClassNegInf},
		{formats.C64, le(0x7FC00000, 4), formats.ClassNaN},
	}
	for _, s := range specials {
		if got := formats.Classify(formats.Element(s.d, s.data, 0)); got != s.class {
			t.Errorf("%s %x: class %v, want %v", s.d, s.data, got, s.class)
		}
	}
	if formats.F32.MaxFinite() != math.MaxFloat32 || formats.F64.MaxFinite() != math.MaxFloat64 || !math.IsInf(formats.I32.MaxFinite(), 1) {
		t.Error("MaxFinite of F32/F64/I32")
	}
	mins := map[formats.DType]float64{formats.F32: math.Pow(2, -126), formats.BF16: math.Pow(2, -126), formats.F64: math.Pow(2, -1022),
		formats.F8_E4M3: math.Pow(2, -6), formats.F8_E5M2: math.Pow(2, -14), formats.F8_E4M3FNUZ: math.Pow(2, -7), formats.F8_E5M2FNUZ: math.Pow(2, -15)}
	for d, m := range mins {
		if d.MinNormal() != m {
			t.Errorf("%s MinNormal %v, want %v", d, d.MinNormal(), m)
		}
	}
}
