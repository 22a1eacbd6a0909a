package formats

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"strconv"
	"unicode/utf8"
)

// TensorSpec describes a tensor to be written.
type TensorSpec struct {
	Name  string
	DType DType
	Shape []uint64
}

// ByteLen is the tensor's data length, or an error on overflow or a bit count that
// is not a whole number of bytes.
func (s TensorSpec) ByteLen() (uint64, error) {
	if s.DType.IsBlock() {
		return s.blockByteLen()
	}
	if !s.DType.Valid() {
		return 0, &Error{Kind: ErrWriteMismatch, Tensor: s.Name, Offset: -1, Detail: fmt.Sprintf("unknown dtype %q", s.DType)}
	}
	n := uint64(1)
	for _, d := range s.Shape {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 {
			return 0, &Error{Kind: ErrValidationOverflow, Tensor: s.Name, Offset: -1, Detail: fmt.Sprintf("shape %v overflows", s.Shape)}
		}
		n = lo
	}
	hi, nbits := bits.Mul64(n, uint64(s.DType.Bits()))
	if hi != 0 {
		return 0, &Error{Kind: ErrValidationOverflow, Tensor: s.Name, Offset: -1, Detail: fmt.Sprintf("shape %v overflows in bits", s.Shape)}
	}
	if nbits%8 != 0 {
		return 0, &Error{Kind: ErrMisalignedSlice, Tensor: s.Name, Offset: -1, Detail: fmt.Sprintf("%d bits is not a whole number of bytes", nbits)}
	}
	return nbits / 8, nil
}

// blockByteLen is ByteLen for a ggml block type: whole blocks along the
// innermost dimension (ggml requires ne[0] to be a multiple of the block).
func (s TensorSpec) blockByteLen() (uint64, error) {
	t, tr, _ := s.DType.Block()
	n := uint64(1)
	for _, d := range s.Shape {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 {
			return 0, &Error{Kind: ErrValidationOverflow, Tensor: s.Name, Offset: -1, Detail: fmt.Sprintf("shape %v overflows", s.Shape)}
		}
		n = lo
	}
	if len(s.Shape) > 0 && s.Shape[len(s.Shape)-1]%uint64(tr.BlockElems) != 0 {
		return 0, &Error{Kind: ErrMisalignedSlice, Tensor: s.Name, Offset: -1,
			Detail: fmt.Sprintf("innermost dimension %d is not a multiple of %s's %d-element block", s.Shape[len(s.Shape)-1], s.DType, tr.BlockElems)}
	}
	b, ok := t.RowBytes(n)
	if !ok {
		return 0, &Error{Kind: ErrValidationOverflow, Tensor: s.Name, Offset: -1, Detail: fmt.Sprintf("shape %v is not whole %s blocks or overflows", s.Shape, s.DType)}
	}
	return b, nil
}

// Writer streams a safetensors file: the header first, then each tensor's bytes in
// Order(), one chunk at a time, so no tensor needs to be in memory whole. The
// header and order are byte-identical to the reference writer's: tensors sorted
// by dtype (descending, in the reference's enum order) then name, compact JSON
// with __metadata__ first (its keys sorted, for determinism), padded with spaces
// to a multiple of 8.
type Writer struct {
	w       io.Writer
	order   []TensorSpec
	ends    []uint64 // cumulative end offset of each tensor
	written uint64
	next    int // index in order of the next tensor WriteTensor expects
}

// PlanOrder returns specs in the order the reference writer lays them out.
func PlanOrder(specs []TensorSpec) []TensorSpec {
	out := append([]TensorSpec(nil), specs...)
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := out[i].DType.writerRank(), out[j].DType.writerRank()
		if ri != rj {
			return ri > rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// EncodeHeader builds the padded JSON header for tensors already in write order.
func EncodeHeader(order []TensorSpec, metadata map[string]string) ([]byte, []uint64, error) {
	buf := []byte{'{'}
	first := true
	if metadata != nil {
		buf = append(buf, `"__metadata__":{`...)
		keys := sortedKeys(metadata)
		for _, k := range keys {
			if !utf8.ValidString(k) || !utf8.ValidString(metadata[k]) {
				return nil, nil, &Error{Kind: ErrInvalidHeader, Offset: -1,
					Detail: fmt.Sprintf("__metadata__ entry %q is not valid UTF-8 (readers would reject the file)", k)}
			}
		}
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, k)
			buf = append(buf, ':')
			buf = appendJSONString(buf, metadata[k])
		}
		buf = append(buf, '}')
		first = false
	}
	seen := make(map[string]bool, len(order))
	ends := make([]uint64, len(order))
	var off uint64
	for i, t := range order {
		if t.Name == "__metadata__" || seen[t.Name] {
			return nil, nil, &Error{Kind: ErrDuplicateName, Tensor: t.Name, Offset: -1, Detail: "tensor name is duplicated or reserved"}
		}
		if !utf8.ValidString(t.Name) {
			return nil, nil, &Error{Kind: ErrInvalidHeader, Tensor: t.Name, Offset: -1, Detail: "tensor name is not valid UTF-8"}
		}
		seen[t.Name] = true
		if t.DType.Known() && !t.DType.InSafetensors() {
			return nil, nil, &Error{Kind: ErrWriteMismatch, Tensor: t.Name, Offset: -1, Detail: fmt.Sprintf("dtype %s cannot be written to safetensors", t.DType)}
		}
		n, err := t.ByteLen()
		if err != nil {
			return nil, nil, err
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = appendJSONString(buf, t.Name)
		buf = append(buf, `:{"dtype":`...)
		buf = appendJSONString(buf, string(t.DType))
		buf = append(buf, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendUint(buf, d, 10)
		}
		buf = append(buf, `],"data_offsets":[`...)
		buf = strconv.AppendUint(buf, off, 10)
		buf = append(buf, ',')
		if off+n < off {
			return nil, nil, &Error{Kind: ErrValidationOverflow, Tensor: t.Name, Offset: -1, Detail: "total data size overflows"}
		}
		off += n
		buf = strconv.AppendUint(buf, off, 10)
		buf = append(buf, "]}"...)
		ends[i] = off
		if len(buf) > MaxHeaderSize {
			return nil, nil, &Error{Kind: ErrHeaderTooBig, Tensor: t.Name, Offset: -1, Detail: "header would exceed the 100 MB limit readers enforce"}
		}
	}
	buf = append(buf, '}')
	for len(buf)%8 != 0 {
		buf = append(buf, ' ')
	}
	if len(buf) > MaxHeaderSize {
		return nil, nil, &Error{Kind: ErrHeaderTooBig, Offset: -1, Detail: "header would exceed the 100 MB limit readers enforce"}
	}
	return buf, ends, nil
}

// appendJSONString quotes s as serde_json does: only '"', '\\' and control
// characters are escaped (short forms where JSON has them, else \u00xx).
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		// Copy a run of bytes that need no escape in one append.
		j := i
		for j < len(s) && s[j] >= 0x20 && s[j] != '"' && s[j] != '\\' {
			j++
		}
		buf = append(buf, s[i:j]...)
		if j == len(s) {
			break
		}
		i = j
		c := s[i]
		switch {
		case c == '"':
			buf = append(buf, '\\', '"')
		case c == '\\':
			buf = append(buf, '\\', '\\')
		case c == '\b':
			buf = append(buf, '\\', 'b')
		case c == '\f':
			buf = append(buf, '\\', 'f')
		case c == '\n':
			buf = append(buf, '\\', 'n')
		case c == '\r':
			buf = append(buf, '\\', 'r')
		case c == '\t':
			buf = append(buf, '\\', 't')
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '"')
}

// NewWriter writes the 8-byte length and the header for specs to w. The caller
// then writes each tensor's data, in Order(), through Write, and calls Close.
func NewWriter(w io.Writer, specs []TensorSpec, metadata map[string]string) (*Writer, error) {
	order := PlanOrder(specs)
	header, ends, err := EncodeHeader(order, metadata)
	if err != nil {
		return nil, err
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	if _, err := w.Write(prefix[:]); err != nil {
		return nil, err
	}
	if _, err := w.Write(header); err != nil {
		return nil, err
	}
	return &Writer{w: w, order: order, ends: ends}, nil
}

// Order is the order in which tensor data must be written.
func (w *Writer) Order() []TensorSpec { return w.order }

// DataLen is the total length of the data section.
func (w *Writer) DataLen() uint64 {
	if len(w.ends) == 0 {
		return 0
	}
	return w.ends[len(w.ends)-1]
}

// Write appends raw tensor data (for callers that stream all tensors in Order()
// themselves). It refuses to write past the declared end.
func (w *Writer) Write(p []byte) (int, error) {
	if uint64(len(p)) > w.DataLen()-w.written {
		return 0, &Error{Kind: ErrWriteMismatch, Offset: -1, Detail: fmt.Sprintf("%d bytes more than the header declares", uint64(len(p))-(w.DataLen()-w.written))}
	}
	n, err := w.w.Write(p)
	w.written += uint64(n)
	return n, err
}

// WriteTensor copies exactly one tensor's bytes from r (read in chunks, never
// whole); name must be the next tensor in Order().
func (w *Writer) WriteTensor(name string, r io.Reader) error {
	if w.next >= len(w.order) || w.order[w.next].Name != name {
		return &Error{Kind: ErrWriteMismatch, Tensor: name, Offset: -1, Detail: "tensor written out of order"}
	}
	begin := uint64(0)
	if w.next > 0 {
		begin = w.ends[w.next-1]
	}
	want := int64(w.ends[w.next] - begin)
	n, err := io.Copy(w, io.LimitReader(r, want))
	if err != nil {
		return err
	}
	if n != want {
		return &Error{Kind: ErrWriteMismatch, Tensor: name, Offset: -1, Detail: fmt.Sprintf("got %d bytes of data, the header declares %d", n, want)}
	}
	w.next++
	return nil
}

// Close checks that every declared byte was written.
func (w *Writer) Close() error {
	if w.written != w.DataLen() {
		return &Error{Kind: ErrWriteMismatch, Offset: -1, Detail: fmt.Sprintf("wrote %d bytes of tensor data, the header declares %d", w.written, w.DataLen())}
	}
	return nil
}
