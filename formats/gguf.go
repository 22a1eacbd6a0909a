package formats

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// The GGUF reader (ggml's docs/gguf.md; the checks of ggml/src/gguf.cpp):
// magic "GGUF", version u32 (2 and 3 are read; 1, with 32-bit counts, is
// refused), tensor count u64, metadata count u64, the metadata key/value
// pairs, the tensor infos (name, n_dims, ne[0..n_dims), ggml type, offset),
// then the data section at the end of the infos rounded up to
// general.alignment (default 32). All little-endian; a big-endian file is
// recognised and refused. Every count and length is checked against the bytes
// the file has left before anything is allocated, every size is
// overflow-checked, and llama.cpp's rules are applied: tensors back to back in
// info order, each at its aligned offset; names shorter than 64 bytes, unique;
// keys unique; at most 4 dimensions, ne[0] a whole number of blocks.

// ErrGGUF is the category of every rule of the GGUF format a file breaks.
var ErrGGUF = errors.New("file is not a valid GGUF file")

// GGUFMagic opens every GGUF file.
const GGUFMagic = "GGUF"

// ggufDefaultAlignment is the data alignment when general.alignment is absent.
const ggufDefaultAlignment = 32

// ggmlMaxName and ggmlMaxDims are ggml's limits (GGML_MAX_NAME, GGML_MAX_DIMS).
const (
	ggmlMaxName = 64
	ggmlMaxDims = 4
)

// ggufKeepString bounds how much of one metadata string is kept in memory (the
// rest is skipped, its length recorded); ggufKeepElems how many elements of
// an array are kept. The file is still read to the end of every value.
const (
	ggufKeepString = 4 << 10
	ggufKeepElems  = 8
	ggufMaxKey     = 64 << 10
	ggufMaxDepth   = 8
)

// GGUFValueType is the type tag of a metadata value.
type GGUFValueType uint32

// The metadata value types of GGUF.
const (
	GGUFUint8 GGUFValueType = iota
	GGUFInt8
	GGUFUint16
	GGUFInt16
	GGUFUint32
	GGUFInt32
	GGUFFloat32
	GGUFBool
	GGUFString
	GGUFArray
	GGUFUint64
	GGUFInt64
	GGUFFloat64
)

var ggufTypeNames = [...]string{"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"}

func (t GGUFValueType) String() string {
	if int(t) < len(ggufTypeNames) {
		return ggufTypeNames[t]
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// size is the encoded size of a scalar type (0 for string and array).
func (t GGUFValueType) size() uint64 {
	switch t {
	case GGUFUint8, GGUFInt8, GGUFBool:
		return 1
	case GGUFUint16, GGUFInt16:
		return 2
	case GGUFUint32, GGUFInt32, GGUFFloat32:
		return 4
	case GGUFUint64, GGUFInt64, GGUFFloat64:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one value of type t occupies.
func (t GGUFValueType) minSize() uint64 {
	switch t {
	case GGUFString:
		return 8
	case GGUFArray:
		return 12
	}
	return t.size()
}

// GGUFValue is one metadata value. Scalars are in Int (signed and bool),
// Uint, Float or Str; an array has Elem, Len and its first elements in Head.
type GGUFValue struct {
	Type   GGUFValueType
	Uint   uint64
	Int    int64
	Float  float64
	Str    string // the first 4 KiB of a string
	StrLen uint64 // the string's full length
	Elem   GGUFValueType
	Len    uint64
	Head   []GGUFValue
}

// String renders a value briefly (an array as its type, length and head).
func (v GGUFValue) String() string {
	switch v.Type {
	case GGUFUint8, GGUFUint16, GGUFUint32, GGUFUint64:
		return fmt.Sprint(v.Uint)
	case GGUFInt8, GGUFInt16, GGUFInt32, GGUFInt64:
		return fmt.Sprint(v.Int)
	case GGUFBool:
		return fmt.Sprint(v.Int != 0)
	case GGUFFloat32:
		return strconv.FormatFloat(v.Float, 'g', -1, 32)
	case GGUFFloat64:
		return fmt.Sprint(v.Float)
	case GGUFString:
		s := fmt.Sprintf("%q", v.Str)
		if v.StrLen > uint64(len(v.Str)) {
			s += fmt.Sprintf(" (%d bytes)", v.StrLen)
		}
		return s
	case GGUFArray:
		parts := make([]string, len(v.Head))
		for i, h := range v.Head {
			parts[i] = h.String()
		}
		more := ""
		if v.Len > uint64(len(v.Head)) {
			more = ", …"
		}
		return fmt.Sprintf("[%d × %s: %s%s]", v.Len, v.Elem, strings.Join(parts, ", "), more)
	}
	return "?"
}

// GGUFKV is one metadata pair.
type GGUFKV struct {
	Key   string
	Value GGUFValue
}

// GGUFTensorInfo is one tensor info as stored: Dims in ggml order (ne[0], the
// fastest-varying dimension, first), Offset relative to the data section.
type GGUFTensorInfo struct {
	Name   string
	Dims   []uint64
	Type   ggml.Type
	Offset uint64
}

// GGUFHeader is what a GGUF file says about itself before its tensor data.
type GGUFHeader struct {
	Version     uint32
	TensorCount uint64
	KVCount     uint64
	KV          []GGUFKV // in file order
	Alignment   uint64
	InfoEnd     int64 // end of the tensor infos
	DataStart   int64 // InfoEnd rounded up to Alignment
	Tensors     []GGUFTensorInfo
}

// Get returns the value of key.
func (h *GGUFHeader) Get(key string) (GGUFValue, bool) {
	for _, kv := range h.KV {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return GGUFValue{}, false
}

// Architecture is general.architecture, "" when absent.
func (h *GGUFHeader) Architecture() string {
	v, ok := h.Get("general.architecture")
	if !ok || v.Type != GGUFString {
		return ""
	}
	return v.Str
}

// UintValue returns an unsigned or non-negative signed integer value of key.
func (h *GGUFHeader) UintValue(key string) (uint64, bool) {
	v, ok := h.Get(key)
	switch {
	case !ok:
		return 0, false
	case v.Type == GGUFUint8 || v.Type == GGUFUint16 || v.Type == GGUFUint32 || v.Type == GGUFUint64:
		return v.Uint, true
	case (v.Type == GGUFInt8 || v.Type == GGUFInt16 || v.Type == GGUFInt32 || v.Type == GGUFInt64) && v.Int >= 0:
		return uint64(v.Int), true
	}
	return 0, false
}

// ContextLength is <architecture>.context_length.
func (h *GGUFHeader) ContextLength() (uint64, bool) {
	return h.UintValue(h.Architecture() + ".context_length")
}

// TokenizerSummary describes the tokenizer in one line ("" when there is
// none): its model, vocabulary size and merges, not the tokens themselves.
func (h *GGUFHeader) TokenizerSummary() string {
	var parts []string
	if v, ok := h.Get("tokenizer.ggml.model"); ok && v.Type == GGUFString {
		parts = append(parts, "model "+v.Str)
	}
	if v, ok := h.Get("tokenizer.ggml.pre"); ok && v.Type == GGUFString {
		parts = append(parts, "pre "+v.Str)
	}
	if v, ok := h.Get("tokenizer.ggml.tokens"); ok && v.Type == GGUFArray {
		parts = append(parts, fmt.Sprintf("%d tokens", v.Len))
	}
	if v, ok := h.Get("tokenizer.ggml.merges"); ok && v.Type == GGUFArray {
		parts = append(parts, fmt.Sprintf("%d merges", v.Len))
	}
	return strings.Join(parts, ", ")
}

// ggufReader reads the header sequentially, knowing how many bytes are left.
type ggufReader struct {
	r    *bufio.Reader
	pos  int64
	size int64
	path string
	err  *Error
}

func (g *ggufReader) fail(kind error, format string, args ...any) {
	if g.err == nil {
		g.err = newErr(kind, g.path, "", g.pos, format, args...)
	}
}

func (g *ggufReader) left() uint64 { return uint64(max(g.size-g.pos, 0)) }

// need checks that n bytes remain for what.
func (g *ggufReader) need(n uint64, what string) bool {
	if g.err != nil {
		return false
	}
	if n > g.left() {
		g.fail(ErrTruncated, "the file ends inside the GGUF header: %s needs %d bytes, %d are left (file is %d bytes)", what, n, g.left(), g.size)
		return false
	}
	return true
}

func (g *ggufReader) bytes(n int, what string) []byte {
	if !g.need(uint64(n), what) {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(g.r, b); err != nil {
		g.fail(ErrTruncated, "reading %s: %v", what, err)
		return nil
	}
	g.pos += int64(n)
	return b
}

func (g *ggufReader) skip(n uint64, what string) {
	if !g.need(n, what) {
		return
	}
	for n > 0 {
		k := int(min(n, 1<<30))
		d, err := g.r.Discard(k)
		g.pos += int64(d)
		if err != nil {
			g.fail(ErrTruncated, "reading %s: %v", what, err)
			return
		}
		n -= uint64(k)
	}
}

func (g *ggufReader) u32(what string) uint32 {
	b := g.bytes(4, what)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (g *ggufReader) u64(what string) uint64 {
	b := g.bytes(8, what)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// str reads a string, keeping at most keep bytes; it returns the kept text and
// the full length.
func (g *ggufReader) str(what string, keep uint64) (string, uint64) {
	start := g.pos
	n := g.u64(what + " length")
	if g.err != nil {
		return "", 0
	}
	if n > g.left() {
		g.pos = start
		g.fail(ErrGGUF, "%s claims %d bytes, but only %d are left in the file: the header is corrupt or truncated", what, n, g.left())
		return "", 0
	}
	k := min(n, keep)
	b := g.bytes(int(k), what)
	g.skip(n-k, what)
	return string(b), n
}

// name reads a key or a tensor name (kind), refusing one longer than
// ggufMaxKey: no GGUF key or ggml tensor name comes near it.
func (g *ggufReader) name(what, kind string) (string, uint64) {
	at := g.pos
	s, n := g.str(what+" "+kind, ggufMaxKey)
	if g.err == nil && n > ggufMaxKey {
		g.pos = at
		g.fail(ErrGGUF, "%s has a %s of %d bytes: not a GGUF %s", what, kind, n, kind)
	}
	return s, n
}

// value reads one value of type t.
func (g *ggufReader) value(t GGUFValueType, what string, depth int) GGUFValue {
	v := GGUFValue{Type: t}
	switch t {
	case GGUFUint8, GGUFInt8, GGUFBool, GGUFUint16, GGUFInt16, GGUFUint32, GGUFInt32, GGUFUint64, GGUFInt64:
		b := g.bytes(int(t.size()), what)
		if b == nil {
			return v
		}
		var u uint64
		switch t.size() {
		case 1:
			u = uint64(b[0])
		case 2:
			u = uint64(binary.LittleEndian.Uint16(b))
		case 4:
			u = uint64(binary.LittleEndian.Uint32(b))
		default:
			u = binary.LittleEndian.Uint64(b)
		}
		switch t {
		case GGUFInt8:
			v.Int = int64(int8(u))
		case GGUFInt16:
			v.Int = int64(int16(u))
		case GGUFInt32:
			v.Int = int64(int32(u))
		case GGUFInt64:
			v.Int = int64(u)
		case GGUFBool:
			v.Int = int64(u)
			if u > 1 {
				g.fail(ErrGGUF, "%s is a bool with value %d (must be 0 or 1)", what, u)
			}
		default:
			v.Uint = u
		}
	case GGUFFloat32:
		v.Float = float64(math.Float32frombits(g.u32(what)))
	case GGUFFloat64:
		v.Float = math.Float64frombits(g.u64(what))
	case GGUFString:
		v.Str, v.StrLen = g.str(what, ggufKeepString)
	case GGUFArray:
		if depth >= ggufMaxDepth {
			g.fail(ErrGGUF, "%s: arrays nested more than %d deep", what, ggufMaxDepth)
			return v
		}
		v.Elem = GGUFValueType(g.u32(what + " element type"))
		v.Len = g.u64(what + " element count")
		if g.err != nil {
			return v
		}
		if v.Elem > GGUFFloat64 {
			g.fail(ErrGGUF, "%s: unknown array element type %d", what, uint32(v.Elem))
			return v
		}
		if hi, lo := bits.Mul64(v.Len, v.Elem.minSize()); hi != 0 || lo > g.left() {
			g.fail(ErrGGUF, "%s claims %d elements of %s, more than the %d bytes left in the file can hold", what, v.Len, v.Elem, g.left())
			return v
		}
		if sz := v.Elem.size(); sz > 0 && v.Len > ggufKeepElems {
			for i := uint64(0); i < ggufKeepElems; i++ {
				v.Head = append(v.Head, g.value(v.Elem, what, depth+1))
			}
			g.skip((v.Len-ggufKeepElems)*sz, what)
			return v
		}
		for i := uint64(0); i < v.Len && g.err == nil; i++ {
			e := g.value(v.Elem, fmt.Sprintf("%s[%d]", what, i), depth+1)
			if i < ggufKeepElems {
				v.Head = append(v.Head, e)
			}
		}
	default:
		g.fail(ErrGGUF, "%s has unknown value type %d", what, uint32(t))
	}
	return v
}

// ggufProblems collects what is wrong with a file, the first error first.
type ggufProblems struct {
	path string
	list []Problem
}

func (p *ggufProblems) add(sev Severity, kind error, tensor string, off int64, format string, args ...any) {
	p.list = append(p.list, Problem{sev, newErr(kind, p.path, tensor, off, format, args...)})
}

// ReadGGUF reads the header and tensor infos of a GGUF file of the given size
// from r. The header is nil when the file cannot be parsed as far as its
// tensor infos; problems lists every rule the file breaks, errors first in
// file order. Only an I/O error is returned as error.
func ReadGGUF(path string, r io.ReaderAt, size int64) (*GGUFHeader, []Problem) {
	g := &ggufReader{r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 64<<10), size: size, path: path}
	p := &ggufProblems{path: path}
	fatal := func() (*GGUFHeader, []Problem) {
		p.list = append([]Problem{{SevError, g.err}}, p.list...)
		return nil, p.list
	}
	magic := g.bytes(4, "the magic")
	if g.err != nil {
		return fatal()
	}
	switch string(magic) {
	case GGUFMagic:
	case "FUGG":
		g.pos = 0
		g.fail(ErrGGUF, "the magic is \"FUGG\" (the GGUF magic byte-swapped): a pre-release GGUF draft of July 2023 or a big-endian writer; no current reader accepts it")
		return fatal()
	default:
		head := make([]byte, min(size, 256))
		n, _ := r.ReadAt(head, 0)
		g.pos = 0
		g.fail(ErrGGUF, "not a GGUF file: it does not start with \"GGUF\"%s", describeGGUFContent(head[:n]))
		return fatal()
	}
	h := &GGUFHeader{Alignment: ggufDefaultAlignment}
	h.Version = g.u32("the version")
	if g.err != nil {
		return fatal()
	}
	switch {
	case h.Version&0xFFFF == 0 && h.Version != 0:
		g.pos = 4
		g.fail(ErrGGUF, "big-endian GGUF (version field reads %#x little-endian, %d big-endian): this reader, like llama.cpp on little-endian machines, reads only little-endian files",
			h.Version, bits.ReverseBytes32(h.Version))
		return fatal()
	case h.Version == 1:
		g.pos = 4
		g.fail(ErrGGUF, "GGUF version 1 (the 2023 format with 32-bit counts and lengths) is not supported; llama.cpp no longer reads it either: convert the model again")
		return fatal()
	case h.Version != 2 && h.Version != 3:
		g.pos = 4
		g.fail(ErrGGUF, "unsupported GGUF version %d (versions 2 and 3 are read)", h.Version)
		return fatal()
	}
	h.TensorCount = g.u64("the tensor count")
	h.KVCount = g.u64("the metadata count")
	if g.err != nil {
		return fatal()
	}
	// A metadata pair takes at least 12 bytes (empty key, type, one byte of
	// value), a tensor info at least 24 (empty name, n_dims, type, offset).
	if hi, lo := bits.Mul64(h.KVCount, 13); hi != 0 || lo > g.left() {
		left := g.left()
		g.pos = 16
		g.fail(ErrGGUF, "the header claims %d metadata pairs, more than the %d bytes left after it can hold", h.KVCount, left)
		return fatal()
	}
	if hi, lo := bits.Mul64(h.TensorCount, 24); hi != 0 || lo > g.left() {
		left := g.left()
		g.pos = 8
		g.fail(ErrGGUF, "the header claims %d tensors, more than the %d bytes left after it can hold (the tensor infos are missing or the count is corrupt)", h.TensorCount, left)
		return fatal()
	}
	keys := make(map[string]bool, h.KVCount)
	for i := uint64(0); i < h.KVCount; i++ {
		at := g.pos
		what := fmt.Sprintf("metadata pair %d", i)
		key, _ := g.name(what, "key")
		t := GGUFValueType(g.u32(what + " value type"))
		if g.err != nil {
			return fatal()
		}
		v := g.value(t, fmt.Sprintf("metadata %q", key), 0)
		if g.err != nil {
			return fatal()
		}
		if keys[key] {
			p.add(SevError, ErrGGUF, "", at, "metadata key %q appears more than once; llama.cpp refuses such a file", key)
		}
		keys[key] = true
		h.KV = append(h.KV, GGUFKV{Key: key, Value: v})
	}
	if v, ok := h.Get("general.alignment"); ok {
		switch {
		case v.Type != GGUFUint32:
			p.add(SevError, ErrGGUF, "", -1, "general.alignment is a %s; GGUF requires a UINT32 (the default %d is used)", v.Type, ggufDefaultAlignment)
		case v.Uint == 0 || v.Uint&(v.Uint-1) != 0:
			p.add(SevError, ErrGGUF, "", -1, "general.alignment is %d, not a power of two (the default %d is used)", v.Uint, ggufDefaultAlignment)
		default:
			h.Alignment = v.Uint
		}
	}
	names := make(map[string]bool, h.TensorCount)
	for i := uint64(0); i < h.TensorCount; i++ {
		at := g.pos
		what := fmt.Sprintf("tensor info %d", i)
		name, nlen := g.name(what, "name")
		nd := g.u32(what + " dimension count")
		if g.err != nil {
			return fatal()
		}
		if nd > ggmlMaxDims {
			g.pos = at
			g.fail(ErrGGUF, "tensor %q has %d dimensions; ggml allows at most %d", name, nd, ggmlMaxDims)
			return fatal()
		}
		ti := GGUFTensorInfo{Name: name, Dims: make([]uint64, nd)}
		for j := range ti.Dims {
			ti.Dims[j] = g.u64(what + " dimensions")
		}
		ti.Type = ggml.Type(g.u32(what + " type"))
		ti.Offset = g.u64(what + " offset")
		if g.err != nil {
			return fatal()
		}
		if nlen >= ggmlMaxName {
			p.add(SevError, ErrGGUF, name, at, "tensor name is %d bytes; ggml allows at most %d", nlen, ggmlMaxName-1)
		}
		if names[name] {
			p.add(SevError, ErrDuplicateName, name, at, "tensor declared more than once; llama.cpp refuses such a file")
		}
		names[name] = true
		h.Tensors = append(h.Tensors, ti)
	}
	h.InfoEnd = g.pos
	h.DataStart = h.InfoEnd
	if r := h.InfoEnd % int64(h.Alignment); r != 0 {
		h.DataStart += int64(h.Alignment) - r
	}
	return h, p.list
}

// describeGGUFContent says what a file that is not GGUF seems to hold.
func describeGGUFContent(head []byte) string {
	return strings.Replace(describeContent(head), "not safetensors", "not GGUF", 1)
}

// readGGUFFile fills file from the GGUF at path (opened as f).
func readGGUFFile(file *File, r io.ReaderAt) {
	file.Container = ContainerGGUF
	h, probs := ReadGGUF(file.Path, r, file.Size)
	p := &ggufProblems{path: file.Path, list: probs}
	if h != nil {
		file.GGUF = h
		file.Located = locateGGUF(file, h, p)
	}
	for i, pr := range p.list {
		if pr.Severity == SevError && file.Err == nil {
			file.Err = pr.Err
			p.list = append(p.list[:i:i], p.list[i+1:]...)
			break
		}
	}
	file.Problems = append(file.Problems, p.list...)
}

// locateGGUF turns the tensor infos into tensors located in the file and
// checks their layout: a known type, dimensions that fit, each tensor at the
// aligned offset right after the previous one (llama.cpp's rule), and inside
// the file.
func locateGGUF(file *File, h *GGUFHeader, p *ggufProblems) []*Tensor {
	var out []*Tensor
	var expect uint64 // where llama.cpp expects the next tensor
	expectOK := true
	var cut []string
	for _, ti := range h.Tensors {
		shape := make([]uint64, len(ti.Dims))
		for j, d := range ti.Dims {
			shape[len(ti.Dims)-1-j] = d
		}
		t := &Tensor{TensorInfo: TensorInfo{Name: ti.Name, Shape: shape, Begin: ti.Offset, End: ti.Offset}, File: file}
		t.Offset = h.DataStart + int64(min(ti.Offset, uint64(math.MaxInt64-h.DataStart)))
		out = append(out, t)
		dt, ok := DTypeOfGGML(ti.Type)
		if !ok {
			t.DType = DType(ti.Type.String())
			p.add(SevError, ErrGGUF, ti.Name, -1, "ggml type id %d is %s; its values cannot be read", uint32(ti.Type), ti.Type)
			expectOK = false
			continue
		}
		t.DType = dt
		tr, _ := ti.Type.Traits()
		numel, overflow := uint64(1), false
		for _, d := range ti.Dims {
			hi, lo := bits.Mul64(numel, d)
			overflow = overflow || hi != 0 || d > math.MaxInt64
			numel = lo
		}
		if overflow || numel > math.MaxInt64 {
			p.add(SevError, ErrValidationOverflow, ti.Name, -1, "dimensions %v overflow (ggml requires the element count to fit in int64)", ti.Dims)
			expectOK = false
			continue
		}
		if len(ti.Dims) > 0 && ti.Dims[0]%uint64(tr.BlockElems) != 0 {
			p.add(SevError, ErrGGUF, ti.Name, -1, "ne[0] = %d is not a multiple of %s's %d-element block", ti.Dims[0], ti.Type, tr.BlockElems)
			expectOK = false
			continue
		}
		nbytes, ok := ti.Type.RowBytes(numel)
		if !ok {
			p.add(SevError, ErrValidationOverflow, ti.Name, -1, "byte length of %d %s values overflows", numel, ti.Type)
			expectOK = false
			continue
		}
		end, carry := bits.Add64(ti.Offset, nbytes, 0)
		if carry != 0 {
			end = math.MaxUint64
		}
		t.End = end
		switch {
		case ti.Offset%h.Alignment != 0:
			p.add(SevError, ErrInvalidOffset, ti.Name, -1, "data offset %d is not a multiple of the alignment %d", ti.Offset, h.Alignment)
		case expectOK && ti.Offset < expect:
			p.add(SevError, ErrInvalidOffset, ti.Name, -1, "data offset %d overlaps the previous tensor, which ends at %d", ti.Offset, expect)
		case expectOK && ti.Offset > expect:
			p.add(SevError, ErrInvalidOffset, ti.Name, -1, "data offset %d leaves a gap after the previous tensor (expected %d); llama.cpp requires tensors back to back in info order", ti.Offset, expect)
		}
		pad := (h.Alignment - nbytes%h.Alignment) % h.Alignment
		next, c1 := bits.Add64(end, pad, 0)
		expect = next
		if carry != 0 || c1 != 0 {
			expectOK = false
		}
		room := uint64(max(file.Size-h.DataStart, 0))
		if end > room {
			t.Cut = true
			cut = append(cut, ti.Name)
		}
	}
	if len(cut) > 0 {
		p.add(SevError, ErrTruncated, "", file.Size, "the file ends before the data of %d of %d tensors: %s (%s missing)", len(cut), len(out), quoteNames(cut, 5), missingBytes(out, file.Size))
	}
	return out
}

// missingBytes describes how far past the end of the file the cut tensors reach.
func missingBytes(ts []*Tensor, size int64) string {
	var far int64
	for _, t := range ts {
		if t.Cut {
			end := t.Offset + int64(min(t.End-t.Begin, uint64(math.MaxInt64-t.Offset)))
			far = max(far, end)
		}
	}
	return HumanBytes(far - size)
}

// IsGGUFName reports whether a file name is a GGUF name.
func IsGGUFName(name string) bool { return strings.HasSuffix(strings.ToLower(name), ".gguf") }
