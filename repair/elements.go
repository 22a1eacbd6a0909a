package repair

import (
	"encoding/binary"

	"github.com/ckpt-tool/ckpt/formats"
)

// unitBytes is the size of one replaceable element of dt: its width (a complex
// value is replaced whole), 0 for the sub-byte dtypes, which have no
// non-finite encoding.
func unitBytes(dt formats.DType) int {
	if !dt.ByteAligned() {
		return 0
	}
	return dt.Size()
}

// nonFinitePlain reports whether the element at the start of u is NaN or
// infinite, decoding it with the reference definitions of package formats.
func nonFinitePlain(dt formats.DType, u []byte) bool {
	if dt.Kind() == formats.KindComplex {
		return formats.ClassifyComplex(formats.Element(dt, u, 0), formats.Element(dt, u, 1)) != formats.ClassFinite
	}
	if !dt.IsFloat() {
		return false
	}
	return formats.Classify(formats.Element(dt, u, 0)) != formats.ClassFinite
}

// nonFinite is nonFinitePlain on raw bits for the common float dtypes (an
// all-ones exponent), and nonFinitePlain itself for the rest.
func nonFinite(dt formats.DType, u []byte) bool {
	switch dt {
	case formats.BF16:
		return binary.LittleEndian.Uint16(u)&0x7F80 == 0x7F80
	case formats.F16:
		return binary.LittleEndian.Uint16(u)&0x7C00 == 0x7C00
	case formats.F32:
		return binary.LittleEndian.Uint32(u)&0x7F800000 == 0x7F800000
	case formats.F64:
		return binary.LittleEndian.Uint64(u)&0x7FF0000000000000 == 0x7FF0000000000000
	case formats.C64:
		return binary.LittleEndian.Uint32(u)&0x7F800000 == 0x7F800000 ||
			binary.LittleEndian.Uint32(u[4:])&0x7F800000 == 0x7F800000
	}
	return nonFinitePlain(dt, u)
}

// mergeElements replaces, in bad, every non-finite element by good's element at
// the same position (bad and good are the same span of one tensor, a whole
// number of elements long). It returns how many elements it replaced and how
// many of those are not finite in good either.
func mergeElements(dt formats.DType, bad, good []byte) (replaced, still uint64) {
	u := unitBytes(dt)
	if u == 0 || !dt.IsFloat() {
		return 0, 0
	}
	for off := 0; off+u <= len(bad); off += u {
		if !nonFinite(dt, bad[off:off+u]) {
			continue
		}
		copy(bad[off:off+u], good[off:off+u])
		replaced++
		if nonFinite(dt, bad[off:off+u]) {
			still++
		}
	}
	return replaced, still
}
