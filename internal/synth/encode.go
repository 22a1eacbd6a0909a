package synth

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/x448/float16"
)

// This file turns float64 values into the bit patterns of every float dtype, and
// reads and writes single elements (bit-packed ones included) in raw tensor data.

// errUnrepresentable is returned when a dtype has no encoding for a value (Inf in
// F8_E4M3, NaN in F4, a finite value beyond the dtype's range).
type errUnrepresentable struct {
	dt formats.DType
	v  float64
}

func (e *errUnrepresentable) Error() string {
	return fmt.Sprintf("dtype %s cannot represent %g", e.dt, e.v)
}

// bf16Bits rounds a float32 to bfloat16, to nearest even; NaN stays a quiet NaN.
func bf16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7F800000 == 0x7F800000 && b&0x7FFFFF != 0 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7FFF + (b >> 16 & 1)
	return uint16(b >> 16)
}

// smallTable holds every finite value of a float dtype of at most 8 bits, sorted,
// with its bit pattern, for nearest-value encoding; nan and inf patterns if any.
type smallTable struct {
	vals    []float64
	pats    []uint8
	nan     int // pattern of a NaN, -1 if none
	posInf  int
	negInf  int
	negZero int // pattern of -0, -1 if none
}

var (
	tablesMu sync.Mutex
	tables   = map[formats.DType]*smallTable{}
)

func tableFor(dt formats.DType) *smallTable {
	tablesMu.Lock()
	defer tablesMu.Unlock()
	if t := tables[dt]; t != nil {
		return t
	}
	t := &smallTable{nan: -1, posInf: -1, negInf: -1, negZero: -1}
	n := 1 << dt.Bits()
	type pv struct {
		v float64
		p uint8
	}
	var all []pv
	for p := 0; p < n; p++ {
		v := decodePattern(dt, uint64(p))
		switch {
		case math.IsNaN(v):
			if t.nan < 0 {
				t.nan = p
			}
		case math.IsInf(v, 1):
			t.posInf = p
		case math.IsInf(v, -1):
			t.negInf = p
		case v == 0 && math.Signbit(v):
			t.negZero = p
		default:
			all = append(all, pv{v, uint8(p)})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })
	for _, x := range all {
		t.vals = append(t.vals, x.v)
		t.pats = append(t.pats, x.p)
	}
	tables[dt] = t
	return t
}

// decodePattern decodes one element's bit pattern (as element 0 of raw data).
func decodePattern(dt formats.DType, p uint64) float64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], p)
	return formats.Element(dt, b[:], 0)
}

// nearest returns the pattern of the finite value closest to v (a tie goes to
// the lower neighbour), or an error when v lies beyond the largest finite
// magnitude by more than half a step.
func (t *smallTable) nearest(dt formats.DType, v float64) (uint8, error) {
	i := sort.SearchFloat64s(t.vals, v)
	switch {
	case i == len(t.vals):
		i--
	case i > 0 && v-t.vals[i-1] <= t.vals[i]-v:
		i--
	}
	if d := math.Abs(t.vals[i] - v); d > 0 {
		lo, hi := t.vals[0], t.vals[len(t.vals)-1]
		if v > hi || v < lo {
			step := hi - t.vals[len(t.vals)-2]
			if v > hi+step/2 || v < lo-step/2 {
				return 0, &errUnrepresentable{dt, v}
			}
		}
	}
	if v == 0 && math.Signbit(v) && t.negZero >= 0 {
		return uint8(t.negZero), nil
	}
	return t.pats[i], nil
}

// encodeBits is the bit pattern of v in dt. A finite v that would become
// non-finite, and a NaN or Inf that dt cannot hold, are errors.
func encodeBits(dt formats.DType, v float64) (uint64, error) {
	var p uint64
	switch dt {
	case formats.F64:
		return math.Float64bits(v), nil
	case formats.F32, formats.C64:
		p = uint64(math.Float32bits(float32(v)))
	case formats.BF16:
		p = uint64(bf16Bits(float32(v)))
	case formats.F16:
		p = uint64(float16.Fromfloat32(float32(v)).Bits())
	default:
		if !dt.IsFloat() || dt.Bits() > 8 {
			return 0, fmt.Errorf("dtype %s is not a float dtype", dt)
		}
		t := tableFor(dt)
		switch {
		case math.IsNaN(v):
			if t.nan < 0 {
				return 0, &errUnrepresentable{dt, v}
			}
			return uint64(t.nan), nil
		case math.IsInf(v, 1):
			if t.posInf < 0 {
				return 0, &errUnrepresentable{dt, v}
			}
			return uint64(t.posInf), nil
		case math.IsInf(v, -1):
			if t.negInf < 0 {
				return 0, &errUnrepresentable{dt, v}
			}
			return uint64(t.negInf), nil
		}
		b, err := t.nearest(dt, v)
		return uint64(b), err
	}
	got := decodePattern(dt, p)
	if !math.IsNaN(v) && !math.IsInf(v, 0) && (math.IsInf(got, 0) || math.IsNaN(got)) {
		return 0, &errUnrepresentable{dt, v}
	}
	return p, nil
}

// elemSpan is the byte range [off, off+n) of raw tensor data holding element i,
// and the bit shift of the element within the little-endian word of those bytes.
func elemSpan(dt formats.DType, i uint64) (off uint64, n int, shift uint) {
	bits := uint64(dt.Bits())
	if bits%8 == 0 {
		return i * bits / 8, int(bits / 8), 0
	}
	bit := i * bits
	off = bit / 8
	shift = uint(bit % 8)
	n = int((uint64(shift) + bits + 7) / 8)
	return off, n, shift
}

// getBits reads element i's pattern from raw bytes b that start at the
// element's span (as elemSpan gives it).
func getBits(dt formats.DType, b []byte, shift uint) uint64 {
	var w [8]byte
	copy(w[:], b)
	x := binary.LittleEndian.Uint64(w[:]) >> shift
	if dt.Bits() < 64 {
		x &= 1<<uint(dt.Bits()) - 1
	}
	return x
}

// putBits writes pattern p into b (the element's span), keeping other bits.
func putBits(dt formats.DType, b []byte, shift uint, p uint64) {
	var w [8]byte
	copy(w[:], b)
	x := binary.LittleEndian.Uint64(w[:])
	mask := uint64(math.MaxUint64)
	if dt.Bits() < 64 {
		mask = (1<<uint(dt.Bits()) - 1) << shift
	}
	x = x&^mask | p<<shift&mask
	binary.LittleEndian.PutUint64(w[:], x)
	copy(b, w[:len(b)])
}

// canGenerate reports whether WriteCheckpoint can fill tensors of dtype dt.
func canGenerate(dt formats.DType) bool {
	switch dt {
	case formats.F64, formats.F32, formats.F16, formats.BF16,
		formats.F8_E4M3, formats.F8_E5M2, formats.F8_E4M3FNUZ, formats.F8_E5M2FNUZ:
		return true
	}
	return false
}

// encodeChunk writes src into dst in dtype dt (dst has len(src)·size bytes).
// Finite values beyond the dtype's range saturate to its largest magnitude, as
// a saturating cast would; NaN stays NaN.
func encodeChunk(dt formats.DType, src []float64, dst []byte) {
	switch dt {
	case formats.BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], bf16Bits(float32(v)))
		}
	case formats.F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], float16.Fromfloat32(float32(v)).Bits())
		}
	case formats.F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(float32(v)))
		}
	case formats.F64:
		for i, v := range src {
			binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(v))
		}
	default: // 8-bit floats
		t := tableFor(dt)
		for i, v := range src {
			if math.IsNaN(v) {
				dst[i] = uint8(t.nan)
				continue
			}
			v = math.Max(t.vals[0], math.Min(v, t.vals[len(t.vals)-1]))
			p, _ := t.nearest(dt, v)
			dst[i] = p
		}
	}
}
