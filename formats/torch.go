package formats

import (
	"bytes"
	"fmt"
	"io"
	"math/bits"
	"path/filepath"
	"strings"

	"github.com/ckpt-tool/ckpt/formats/pickle"
)

// PyTorch files: torch.save's zip format (torch_zip.go) and the legacy
// format before it (torch_legacy.go). Both end in one pickle that names its
// storages by persistent id; this file turns the unpickled value into located
// tensors (absolute byte offsets, nothing copied) and the pickle's globals
// into findings.

// torchDTypes maps torch dtype names to ours (complex128 is C128, which
// safetensors lacks). complex32 and the quantized types have no dtype here:
// their tensors are reported as not supported.
var torchDTypes = map[string]DType{
	"float32": F32, "float64": F64, "float16": F16, "bfloat16": BF16,
	"int64": I64, "int32": I32, "int16": I16, "int8": I8, "uint8": U8, "bool": BOOL,
	"uint16": U16, "uint32": U32, "uint64": U64, "complex64": C64, "complex128": C128,
	"float8_e4m3fn": F8_E4M3, "float8_e5m2": F8_E5M2, "float8_e4m3fnuz": F8_E4M3FNUZ,
	"float8_e5m2fnuz": F8_E5M2FNUZ, "float8_e8m0fnu": F8_E8M0,
}

// torchElemSize is the byte width of a torch dtype, 0 when unknown.
func torchElemSize(name string) int64 {
	if d, ok := torchDTypes[name]; ok {
		return int64(d.Size())
	}
	switch name {
	case "complex32":
		return 4
	case "qint8", "quint8", "quint4x2", "quint2x4", "bits8":
		return 1
	case "qint32":
		return 4
	}
	return 0
}

// pickleLimits are the unpickler's bounds for every torch file.
var pickleLimits = pickle.DefaultLimits()

// maxPickleBytes caps the data.pkl read into memory.
const maxPickleBytes = 256 << 20

// storageBytes locates one storage's bytes in the file.
type storageBytes struct {
	off, n int64  // absolute offset and byte length
	record string // where the bytes are, for messages
}

// torchReader collects what reading one torch file finds.
type torchReader struct {
	file     *File
	storages map[string]storageBytes
	where    string // zip: the storage records' folder ("archive/data/")
}

func (r *torchReader) problem(sev Severity, kind error, tensor string, off int64, format string, args ...any) {
	r.file.Problems = append(r.file.Problems, Problem{sev, newErr(kind, r.file.Path, tensor, off, format, args...)})
}

// fatal records the error that stops the file being read.
func (r *torchReader) fatal(kind error, off int64, format string, args ...any) {
	e := newErr(kind, r.file.Path, "", off, format, args...)
	if r.file.Err == nil {
		r.file.Err = e
	} else {
		r.file.Problems = append(r.file.Problems, Problem{SevError, e})
	}
}

// uses turns the globals a pickle names into findings: an error for code, a
// warning for data classes. where names the pickle ("data.pkl").
func (r *torchReader) uses(res *pickle.Result, where string) {
	if res == nil {
		return
	}
	for _, u := range res.Uses {
		var e *Error
		switch u.Verdict {
		case pickle.Code:
			what := "names " + u.Global.String() + ", a callable outside the allow-list that torch.load would import"
			if u.Called {
				what = fmt.Sprintf("calls %s%s, code outside the allow-list that torch.load would run", u.Global, u.Args)
			}
			e = newErr(ErrPickle, r.file.Path, "", u.Offset, "%s %s; ckpt ran nothing", where, what)
			r.file.Problems = append(r.file.Problems, Problem{SevError, e})
		case pickle.Data:
			e = newErr(ErrPickle, r.file.Path, "", u.Offset,
				"%s holds an instance of %s, a class outside the allow-list: loading it needs torch.load(weights_only=False) and that class's library; ckpt kept it as inert data and still read the tensors",
				where, u.Global)
			r.file.Problems = append(r.file.Problems, Problem{SevWarning, e})
		default:
			continue
		}
		e.Global = u.Global.String()
	}
}

// locate turns the tensors of an unpickled value into located tensors.
func (r *torchReader) locate(v any) {
	named, err := pickle.Tensors(v)
	if err != nil {
		r.fatal(ErrTorchFormat, -1, "the pickle cannot be walked: %v", err)
	}
	type tieKey struct {
		storage, dtype, shape, stride string
		off                           int64
	}
	tied := map[tieKey]string{}
	for _, n := range named {
		name := n.Name
		t := n.Tensor
		dt, ok := torchDTypes[t.DType]
		if !ok {
			r.problem(SevWarning, ErrUnsupported, name, -1, "tensor of torch dtype %s was not read: ckpt has no dtype for it", t.DType)
			continue
		}
		ti, err := r.tensor(name, t, dt)
		if err != nil {
			r.file.Problems = append(r.file.Problems, Problem{SevError, err})
			continue
		}
		k := tieKey{t.Storage.Key + "\x00" + t.Storage.ViewOf, t.DType, fmt.Sprint(t.Size), fmt.Sprint(t.Stride), t.Offset}
		if first, ok := tied[k]; ok {
			ti.TiedTo = first
		} else {
			tied[k] = name
		}
		r.file.Located = append(r.file.Located, ti)
	}
}

// tensor locates one tensor in its storage's bytes, checking every bound.
func (r *torchReader) tensor(name string, t *pickle.Tensor, dt DType) (*Tensor, *Error) {
	bad := func(format string, args ...any) *Error {
		return newErr(ErrTorchFormat, r.file.Path, name, -1, format, args...)
	}
	sb, ok := r.storages[t.Storage.Key]
	if t.Storage.ViewOf != "" {
		root, rok := r.storages[t.Storage.ViewOf]
		es := torchElemSize(t.Storage.DType)
		if !rok || es == 0 || t.Storage.ViewOffset > (root.n/es) || t.Storage.Numel > root.n/es-t.Storage.ViewOffset {
			return nil, bad("storage view %q of %q lies outside its storage", t.Storage.Key, t.Storage.ViewOf)
		}
		sb, ok = storageBytes{root.off + t.Storage.ViewOffset*es, t.Storage.Numel * es, root.record}, true
	}
	if !ok {
		if r.where != "" {
			return nil, bad("zip record %q holding its storage is missing or unreadable", r.where+t.Storage.Key)
		}
		return nil, bad("its storage %q has no bytes in the file", t.Storage.Key)
	}
	es := int64(dt.Size())
	// The storage's declared length: numel elements of the storage's dtype.
	ses := torchElemSize(t.Storage.DType)
	o, declared := bits.Mul64(uint64(t.Storage.Numel), uint64(ses))
	if o != 0 || declared > uint64(sb.n) {
		return nil, bad("its storage %q declares %d elements (%d bytes) but %s holds %d bytes", t.Storage.Key, t.Storage.Numel, declared, sb.record, sb.n)
	}
	numel := uint64(1)
	shape := make([]uint64, len(t.Size))
	for i, s := range t.Size {
		shape[i] = uint64(s)
		hi, lo := bits.Mul64(numel, uint64(s))
		if hi != 0 {
			return nil, bad("its shape %v overflows", t.Size)
		}
		numel = lo
	}
	// The last element index reached, in elements of dt from the storage start.
	last := uint64(t.Offset)
	if numel > 0 {
		for i, s := range t.Size {
			hi, lo := bits.Mul64(uint64(s-1), uint64(t.Stride[i]))
			sum, carry := bits.Add64(last, lo, 0)
			if hi != 0 || carry != 0 {
				return nil, bad("its strides %v reach past any storage", t.Stride)
			}
			last = sum
		}
	}
	o1, spanEnd := bits.Mul64(last+1, uint64(es))
	if numel == 0 {
		o1, spanEnd = bits.Mul64(uint64(t.Offset), uint64(es))
	}
	if o1 != 0 || spanEnd > declared {
		return nil, bad("offset %d, shape %v and strides %v reach byte %d of storage %q, which holds %d bytes", t.Offset, t.Size, t.Stride, spanEnd, t.Storage.Key, declared)
	}
	start := sb.off + t.Offset*es
	nbytes := numel * uint64(es)
	ti := &Tensor{TensorInfo: TensorInfo{Name: name, DType: dt, Shape: shape}, File: r.file, Offset: start}
	ti.Begin = uint64(start)
	ti.End = ti.Begin + nbytes
	if !contiguous(t.Size, t.Stride) {
		ti.Strides = append([]int64(nil), t.Stride...)
		ti.End = uint64(sb.off) + spanEnd // the span the view's elements lie in
	}
	return ti, nil
}

// contiguous reports whether stride is the row-major stride of size
// (dimensions of size 1 may have any stride).
func contiguous(size, stride []int64) bool {
	want := int64(1)
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] != 1 && stride[i] != want {
			return false
		}
		want *= size[i]
	}
	return true
}

// detectTorch reports whether a file's first bytes are a torch.save file: a
// zip, a pickle with a PROTO opcode, or (under a PyTorch extension only) a
// protocol-0/1 pickle, which has no magic of its own.
func detectTorch(head []byte, path string) bool {
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")) {
		return true
	}
	if len(head) >= 2 && head[0] == 0x80 && head[1] >= 1 && head[1] <= 5 {
		return true
	}
	// A protocol-0/1 pickle (no PROTO opcode) under a torch extension.
	switch strings.ToLower(filepath.Ext(path)) {
	case ".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt":
		if len(head) > 0 && strings.IndexByte("c(}]NIJKLMFSVXU", head[0]) >= 0 {
			return true
		}
	}
	return false
}

// readTorch reads a torch file's container and pickle into file.
func readTorch(file *File, f io.ReaderAt) {
	r := &torchReader{file: file, storages: map[string]storageBytes{}}
	file.Container = ContainerTorch
	var head [4]byte
	n, _ := f.ReadAt(head[:], 0)
	if n == 4 && (string(head[:]) == "PK\x03\x04" || string(head[:]) == "PK\x05\x06") {
		r.readZip(f)
		return
	}
	r.readLegacy(f)
}
