package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the reference reader's (and writer's) cap on the JSON header.
const MaxHeaderSize = 100_000_000

// TensorInfo is one tensor as a header declares it. Begin and End are relative to
// the start of the data section, as in the file.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []uint64
	Begin uint64
	End   uint64
}

// Numel is the number of elements (1 for a scalar). Validated headers guarantee it
// does not overflow.
func (t *TensorInfo) Numel() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Bytes is the length of the tensor's data.
func (t *TensorInfo) Bytes() uint64 { return t.End - t.Begin }

// Header is a parsed safetensors header. Tensors are sorted by their offsets,
// which is also their order in the data section.
type Header struct {
	Len         uint64 // N, the JSON length from the 8-byte prefix
	Metadata    map[string]string
	HasMetadata bool
	Tensors     []TensorInfo
	Duplicates  []string // names declared more than once (the last declaration is kept)
	DataLen     uint64   // end of the last tensor: the data section's declared length
}

// DataStart is the absolute offset of the data section.
func (h *Header) DataStart() int64 { return int64(8 + h.Len) }

// jsonSpace reports whether b is JSON insignificant whitespace.
func jsonSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// ParseHeaderJSON parses and validates the JSON header text (rules 4 to 7 of the
// reference reader). file names the file in errors.
func ParseHeaderJSON(file string, text []byte) (*Header, error) {
	if !utf8.Valid(text) {
		off := int64(8)
		for i := 0; i < len(text); {
			r, n := utf8.DecodeRune(text[i:])
			if r == utf8.RuneError && n <= 1 {
				off += int64(i)
				break
			}
			i += n
		}
		return nil, newErr(ErrInvalidHeader, file, "", off, "header is not valid UTF-8")
	}
	if bytes.HasPrefix(text, []byte("\xef\xbb\xbf")) {
		// JSON parsers, the reference reader's among them, reject a BOM; say
		// so instead of "invalid character 'ï'".
		return nil, deserErr(file, 0, "the header starts with a UTF-8 byte-order mark (bytes EF BB BF), which JSON does not allow; the writer added it")
	}
	if off, why := strictJSONCheck(text); why != "" {
		return nil, deserErr(file, int64(off), "%s", why)
	}
	h := &Header{Len: uint64(len(text))}
	if !parseHeaderFast(text, h) {
		*h = Header{Len: uint64(len(text))}
		if err := parseHeaderObject(file, text, h); err != nil {
			return h, err
		}
	}
	err := validateOffsets(file, h)
	var fe *Error
	if len(h.Duplicates) > 0 && errors.As(err, &fe) && fe.Kind == ErrInvalidOffset {
		// The likely cause: a name declared twice, whose earlier declaration
		// readers drop, leaving its bytes unaccounted for.
		fe.Detail += fmt.Sprintf(" — %s declared more than once; readers keep only the last declaration, so the bytes of the earlier one belong to no tensor",
			quoteNames(h.Duplicates, 3))
	}
	return h, err
}

func deserErr(file string, off int64, format string, args ...any) *Error {
	return newErr(ErrInvalidHeaderDeserialization, file, "", 8+off, format, args...)
}

func parseHeaderObject(file string, text []byte, h *Header) error {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return deserErr(file, dec.InputOffset(), "header is not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return deserErr(file, 0, "header must be a JSON object, found %s", describeToken(tok))
	}
	seen := map[string]int{}
	for dec.More() {
		keyOff := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return deserErr(file, keyOff, "header is not JSON: %v", err)
		}
		name := tok.(string) // object keys are always strings
		if name == "__metadata__" {
			if h.HasMetadata {
				return deserErr(file, keyOff, "duplicate __metadata__ entry")
			}
			h.HasMetadata = true
			md, err := parseMetadata(file, dec)
			if err != nil {
				return err
			}
			h.Metadata = md
			continue
		}
		ti, err := parseTensorInfo(file, name, dec)
		if err != nil {
			return err
		}
		if i, dup := seen[name]; dup {
			if !slices.Contains(h.Duplicates, name) { // once, however often it repeats
				h.Duplicates = append(h.Duplicates, name)
			}
			h.Tensors[i] = ti
			continue
		}
		seen[name] = len(h.Tensors)
		h.Tensors = append(h.Tensors, ti)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return deserErr(file, dec.InputOffset(), "header is not JSON: %v", err)
	}
	rest := text[dec.InputOffset():]
	for i, b := range rest {
		if !jsonSpace(b) {
			return deserErr(file, dec.InputOffset()+int64(i),
				"unexpected byte 0x%02x after the header's JSON object (only spaces may pad it)", b)
		}
	}
	return nil
}

func describeToken(tok any) string {
	switch t := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		return string(t)
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprint(tok)
}

func parseMetadata(file string, dec *json.Decoder) (map[string]string, error) {
	off := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return nil, deserErr(file, off, "header is not JSON: %v", err)
	}
	if tok == nil {
		// serde maps Option<HashMap> null to None: the reference accepts it.
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, deserErr(file, off, "__metadata__ must be an object of strings, found %s", describeToken(tok))
	}
	md := map[string]string{}
	for dec.More() {
		ktok, err := dec.Token()
		if err != nil {
			return nil, deserErr(file, dec.InputOffset(), "header is not JSON: %v", err)
		}
		voff := dec.InputOffset()
		vtok, err := dec.Token()
		if err != nil {
			return nil, deserErr(file, voff, "header is not JSON: %v", err)
		}
		v, ok := vtok.(string)
		if !ok {
			return nil, deserErr(file, voff, "__metadata__ value for %q must be a string, found %s", ktok, describeToken(vtok))
		}
		md[ktok.(string)] = v // serde's HashMap keeps the last duplicate
	}
	if _, err := dec.Token(); err != nil {
		return nil, deserErr(file, dec.InputOffset(), "header is not JSON: %v", err)
	}
	return md, nil
}

func parseUint(file, name, field string, off int64, tok any) (uint64, error) {
	num, ok := tok.(json.Number)
	if !ok {
		return 0, deserErr(file, off, "tensor %q: %s must hold non-negative integers, found %s", name, field, describeToken(tok))
	}
	s := string(num)
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, deserErr(file, off, "tensor %q: %s must hold non-negative integers, found %s", name, field, s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, deserErr(file, off, "tensor %q: %s value %s does not fit in 64 bits", name, field, s)
	}
	return v, nil
}

func parseUintArray(file, name, field string, dec *json.Decoder) ([]uint64, error) {
	off := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return nil, deserErr(file, off, "header is not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, deserErr(file, off, "tensor %q: %s must be an array, found %s", name, field, describeToken(tok))
	}
	out := []uint64{}
	for dec.More() {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, deserErr(file, off, "header is not JSON: %v", err)
		}
		v, err := parseUint(file, name, field, off, tok)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, deserErr(file, dec.InputOffset(), "header is not JSON: %v", err)
	}
	return out, nil
}

// parseTensorInfo reads one tensor's {"dtype", "shape", "data_offsets"} object.
// Known divergence: the reference deserializes tensor infos through serde's
// buffered Content (the header struct flattens them), which also takes the
// positional form ["U8",[2],[0,2]] and a dtype written as {"U8":null}. No
// writer produces either; ckpt reports them as malformed headers.
func parseTensorInfo(file, name string, dec *json.Decoder) (TensorInfo, error) {
	ti := TensorInfo{Name: name}
	off := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return ti, deserErr(file, off, "header is not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return ti, deserErr(file, off, "tensor %q: expected an object with dtype, shape and data_offsets, found %s", name, describeToken(tok))
	}
	var haveDType, haveShape, haveOffsets bool
	for dec.More() {
		koff := dec.InputOffset()
		ktok, err := dec.Token()
		if err != nil {
			return ti, deserErr(file, koff, "header is not JSON: %v", err)
		}
		switch key := ktok.(string); key {
		case "dtype":
			if haveDType {
				return ti, deserErr(file, koff, "tensor %q: duplicate field dtype", name)
			}
			haveDType = true
			voff := dec.InputOffset()
			vtok, err := dec.Token()
			if err != nil {
				return ti, deserErr(file, voff, "header is not JSON: %v", err)
			}
			s, ok := vtok.(string)
			if !ok || !DType(s).InSafetensors() {
				return ti, deserErr(file, voff, "tensor %q: unknown dtype %v", name, vtok)
			}
			ti.DType = DType(s)
		case "shape":
			if haveShape {
				return ti, deserErr(file, koff, "tensor %q: duplicate field shape", name)
			}
			haveShape = true
			if ti.Shape, err = parseUintArray(file, name, "shape", dec); err != nil {
				return ti, err
			}
		case "data_offsets":
			if haveOffsets {
				return ti, deserErr(file, koff, "tensor %q: duplicate field data_offsets", name)
			}
			haveOffsets = true
			offs, err := parseUintArray(file, name, "data_offsets", dec)
			if err != nil {
				return ti, err
			}
			if len(offs) != 2 {
				return ti, deserErr(file, koff, "tensor %q: data_offsets must be [begin, end], found %d numbers", name, len(offs))
			}
			ti.Begin, ti.End = offs[0], offs[1]
		default: // the reference ignores unknown fields
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return ti, deserErr(file, dec.InputOffset(), "header is not JSON: %v", err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return ti, deserErr(file, dec.InputOffset(), "header is not JSON: %v", err)
	}
	switch {
	case !haveDType:
		return ti, deserErr(file, off, "tensor %q: missing field dtype", name)
	case !haveShape:
		return ti, deserErr(file, off, "tensor %q: missing field shape", name)
	case !haveOffsets:
		return ti, deserErr(file, off, "tensor %q: missing field data_offsets", name)
	}
	return ti, nil
}

// validateOffsets applies rules 6 and 7: tensors sorted by offsets must tile the
// data section from 0 with no gap or overlap, and each byte length must equal
// numel × width without overflow.
func validateOffsets(file string, h *Header) error {
	sort.SliceStable(h.Tensors, func(i, j int) bool {
		a, b := h.Tensors[i], h.Tensors[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		return a.End < b.End
	})
	start := uint64(0)
	dataStart := int64(8 + h.Len)
	for i := range h.Tensors {
		t := &h.Tensors[i]
		if t.Begin != start || t.End < t.Begin {
			return offsetError(file, h, i, start, dataStart)
		}
		numel := uint64(1)
		for _, d := range t.Shape {
			hi, lo := bits.Mul64(numel, d)
			if hi != 0 {
				return newErr(ErrValidationOverflow, file, t.Name, -1, "shape %v has more elements than fit in 64 bits", t.Shape)
			}
			numel = lo
		}
		hi, nbits := bits.Mul64(numel, uint64(t.DType.Bits()))
		if hi != 0 {
			return newErr(ErrValidationOverflow, file, t.Name, -1, "shape %v of %s overflows when counted in bits", t.Shape, t.DType)
		}
		if nbits%8 != 0 {
			return newErr(ErrMisalignedSlice, file, t.Name, -1, "%d elements of %s make %d bits, not a whole number of bytes", numel, t.DType, nbits)
		}
		if nbits/8 != t.End-t.Begin {
			return newErr(ErrTensorInvalidInfo, file, t.Name, dataStart+int64(t.Begin),
				"%s %v needs %d bytes but data_offsets [%d, %d] give %d", t.DType, t.Shape, nbits/8, t.Begin, t.End, t.End-t.Begin)
		}
		start = t.End
	}
	h.DataLen = start
	return nil
}

func offsetError(file string, h *Header, i int, expected uint64, dataStart int64) error {
	t := h.Tensors[i]
	var detail string
	switch {
	case t.End < t.Begin:
		detail = fmt.Sprintf("data_offsets [%d, %d] end before they begin", t.Begin, t.End)
	case i > 0 && t.Begin < expected:
		p := h.Tensors[i-1]
		if t.Begin == p.Begin && t.End == p.End {
			detail = fmt.Sprintf("shares bytes [%d, %d] with tensor %q (aliased data)", t.Begin, t.End, p.Name)
		} else {
			detail = fmt.Sprintf("bytes [%d, %d] overlap tensor %q at [%d, %d]", t.Begin, t.End, p.Name, p.Begin, p.End)
		}
	case i > 0:
		detail = fmt.Sprintf("starts at %d, leaving a gap of %d bytes after tensor %q which ends at %d", t.Begin, t.Begin-expected, h.Tensors[i-1].Name, expected)
	default:
		detail = fmt.Sprintf("the first tensor must start at offset 0 of the data section, not %d", t.Begin)
	}
	return newErr(ErrInvalidOffset, file, t.Name, dataStart+int64(min(t.Begin, uint64(1<<62))), "%s", detail)
}

// ReadHeader reads and validates the safetensors header of a file of the given
// size through r, applying the reference's read rules in order. It never
// allocates more than the file holds. On a rule-8 failure (data not ending at
// end of file) the parsed header is returned along with the error, so callers
// can still list and read the intact tensors.
func ReadHeader(file string, r io.ReaderAt, size int64) (*Header, error) {
	if size < 8 {
		head := make([]byte, max(size, 0))
		n, _ := r.ReadAt(head, 0)
		content := describeContent(head[:n])
		e := newErr(ErrHeaderTooSmall, file, "", -1, "file is %d bytes%s; a safetensors file starts with an 8-byte header length",
			size, content)
		if n > 0 && content != "" {
			e.Also = ErrNotSafetensors
		}
		return nil, e
	}
	var prefix [8]byte
	if _, err := r.ReadAt(prefix[:], 0); err != nil {
		return nil, newErr(ErrInvalidHeaderLength, file, "", 0, "cannot read the header length: %v", err)
	}
	n := uint64(prefix[0]) | uint64(prefix[1])<<8 | uint64(prefix[2])<<16 | uint64(prefix[3])<<24 |
		uint64(prefix[4])<<32 | uint64(prefix[5])<<40 | uint64(prefix[6])<<48 | uint64(prefix[7])<<56
	if n > MaxHeaderSize || n > uint64(size)-8 {
		kind, what := ErrHeaderTooLarge, fmt.Sprintf("header length %d exceeds the 100 MB limit", n)
		if n <= MaxHeaderSize {
			kind, what = ErrInvalidHeaderLength, fmt.Sprintf("header length %d runs past the end of the %d-byte file", n, size)
		}
		if lfs := lfsPointer(r, size); lfs != "" {
			e := newErr(ErrLFSPointer, file, "", -1, "%s", lfs)
			e.Also = kind
			return nil, e
		}
		head := make([]byte, min(size, 256))
		k, _ := r.ReadAt(head, 0)
		content := describeContent(head[:k])
		e := newErr(kind, file, "", 0, "%s%s", what, content)
		if content != "" {
			e.Also = ErrNotSafetensors
		}
		return nil, e
	}
	text := make([]byte, n)
	if _, err := r.ReadAt(text, 8); err != nil {
		return nil, newErr(ErrInvalidHeaderLength, file, "", 8, "cannot read the %d-byte header: %v", n, err)
	}
	h, err := ParseHeaderJSON(file, text)
	if err != nil {
		if fe, ok := err.(*Error); ok && fe.Offset > size {
			fe.Offset = -1 // a data offset past the end of the file locates nothing
		}
		return nil, err
	}
	// 8+n+DataLen can overflow uint64 for a hostile header (DataLen up to
	// 2^64-1): compare against what the file has room for instead.
	if h.DataLen != uint64(size)-8-n {
		return h, incompleteError(file, h, size)
	}
	return h, nil
}

func incompleteError(file string, h *Header, size int64) error {
	dataStart := uint64(h.DataStart())
	room := uint64(size) - dataStart // bytes the file holds after the header
	if h.DataLen < room {
		want := dataStart + h.DataLen
		e := newErr(ErrMetadataIncompleteBuffer, file, "", int64(want),
			"%d trailing bytes after the last tensor (the header accounts for %d bytes, the file has %d)", uint64(size)-want, want, size)
		e.Also = ErrTrailingBytes
		return e
	}
	var cut []string
	for _, t := range h.Tensors {
		if t.End > room {
			cut = append(cut, t.Name)
		}
	}
	list := quoteNames(cut, 5)
	missing := h.DataLen - room
	want := "the header declares " + strconv.FormatUint(h.DataLen, 10) + " bytes of tensor data"
	if dataStart+h.DataLen >= dataStart { // no overflow: the whole file size is meaningful
		want = "the header accounts for " + strconv.FormatUint(dataStart+h.DataLen, 10) + " bytes"
	}
	e := newErr(ErrMetadataIncompleteBuffer, file, "", size,
		"file is truncated: %d bytes missing (%s, the file has %d); %d of %d tensors cut short: %s (an interrupted save or download?)",
		missing, want, size, len(cut), len(h.Tensors), list)
	e.Also = ErrTruncated
	return e
}

// quoteNames quotes the first show names, then says how many more there are:
// "a", "b", "c" and 2 more.
func quoteNames(names []string, show int) string {
	out := ""
	for i, n := range names {
		if i == show {
			return out + fmt.Sprintf(" and %d more", len(names)-show)
		}
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(n)
	}
	return out
}
