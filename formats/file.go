package formats

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Container names the on-disk format of one file of a checkpoint.
type Container string

const (
	ContainerSafetensors Container = "safetensors"
	ContainerTorch       Container = "torch" // torch.save, zip or legacy
	ContainerGGUF        Container = "gguf"
)

// File is one weights file of a checkpoint, described from its header alone
// (for a PyTorch file: its pickle; for GGUF: its header and tensor infos).
type File struct {
	Path      string    // path on disk
	Name      string    // name inside the checkpoint (the shard name), or the base name
	Container Container // "" means safetensors (files built by hand in tests)
	Size      int64     // size in bytes when opened
	Header    *Header   // safetensors only; nil when the header could not be parsed
	Err       error     // the first read rule the file breaks (an *Error), nil when valid
	Problems  []Problem
	Info      fs.FileInfo // the file as it was when its header was read
	// Located holds the tensors of a file whose container is not safetensors,
	// as its reader located them (in data order); Tensors returns them.
	Located []*Tensor
	GGUF    *GGUFHeader // GGUF only; nil when the header could not be parsed
	// Pickled is, for a PyTorch file, the value its main pickle built (tensors
	// as *pickle.Tensor records, nothing run): the non-tensor data readers of
	// training state need, such as an optimizer's param_groups. nil otherwise.
	Pickled any
}

// Format is the file's container, safetensors when unset.
func (f *File) Format() Container {
	if f.Container == "" {
		return ContainerSafetensors
	}
	return f.Container
}

// Valid reports whether the file passed every read rule.
func (f *File) Valid() bool { return f.Err == nil }

// Tensor is one tensor of a checkpoint, located in its file. Begin and End
// (in TensorInfo) span every byte the tensor's elements occupy; Offset is the
// absolute offset of the element at index 0.
type Tensor struct {
	TensorInfo
	File   *File
	Offset int64 // absolute offset of the first byte in File
	Cut    bool  // the file ends before the tensor does
	// Strides, in elements, for a tensor that is not a contiguous row-major
	// block (a PyTorch view); nil when it is one.
	Strides []int64
	// TiedTo names the tensor this one shares its bytes with (same storage,
	// same offset, shape and strides): its values are that tensor's, read once.
	TiedTo string
}

// Contiguous reports whether the tensor's elements are one row-major block.
func (t *Tensor) Contiguous() bool { return t.Strides == nil }

// Length is the tensor's byte length (saturated at math.MaxInt64, which only a
// Cut tensor of a file that breaks read rule 8 can reach).
func (t *Tensor) Length() int64 { return int64(min(t.End-t.Begin, math.MaxInt64)) }

// ReadFileHeader opens path and reads its header (no tensor data). err is non-nil
// only when the file cannot be opened or read at all (permission, I/O); format
// problems are recorded in File.Err and File.Problems.
func ReadFileHeader(path, name string) (*File, error) {
	f, err := FSFor(path).Open(path, Pread)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	file := &File{Path: path, Name: name, Size: f.Size(), Info: st}
	switch sniff(f, path) {
	case ContainerGGUF:
		readGGUFFile(file, f)
		return file, nil
	case ContainerTorch:
		readTorch(file, f)
		return file, nil
	case containerNotTorch:
		head := make([]byte, min(st.Size(), 256))
		n, _ := f.ReadAt(head, 0)
		what := describeContent(head[:n])
		if what == "" {
			what = fmt.Sprintf("; it starts with % x", head[:min(n, 8)])
		}
		file.Container = ContainerTorch
		file.Err = newErr(ErrTorchFormat, path, "", 0, "not a PyTorch file (neither a torch.save zip nor a pickle)%s", what)
		return file, nil
	}
	h, herr := ReadHeader(path, f, st.Size())
	file.Header = h
	if herr != nil {
		if _, ok := herr.(*Error); !ok {
			return nil, herr
		}
		file.Err = herr
	}
	if h != nil {
		if h.Len%8 != 0 {
			file.Problems = append(file.Problems, Problem{SevInfo, newErr(ErrUnpaddedHeader, path, "", 0,
				"header length %d is not a multiple of 8, so tensor data is not 8-byte aligned (older writers did this; readers accept it)", h.Len)})
		}
		for _, name := range h.Duplicates {
			file.Problems = append(file.Problems, Problem{SevError, newErr(ErrDuplicateName, path, name, -1,
				"declared more than once in the header; readers silently keep the last declaration")})
		}
	}
	return file, nil
}

// containerNotTorch: a file under a PyTorch name whose bytes are no known format.
const containerNotTorch Container = "not-torch"

// sniff names a file's container from its first bytes: the magic decides, the
// extension only says what an unrecognised file was meant to be. "" means
// safetensors (whose reader names other contents itself).
func sniff(f io.ReaderAt, path string) Container {
	var head [32]byte
	n, _ := f.ReadAt(head[:], 0)
	switch m := string(head[:min(n, 4)]); {
	case m == GGUFMagic || m == "FUGG":
		// GGUF first: its tensor count can make the first bytes look like a
		// safetensors length followed by '{'.
		return ContainerGGUF
	case n >= 10 && head[8] == '{' && binary.LittleEndian.Uint64(head[:8]) >= 2:
		// A safetensors header (its length, then JSON): a length such as
		// 0x180 starts with the bytes of a pickle's PROTO opcode.
		return ""
	case detectTorch(head[:n], path):
		return ContainerTorch
	case IsGGUFName(path):
		return ContainerGGUF // the GGUF reader says what it is instead
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt":
		if n > 0 && !bytes.HasPrefix(head[:n], []byte(lfsPrefix)) {
			return containerNotTorch
		}
	}
	return ""
}

// Parsed reports whether the file's tensors could be listed (its header, or
// for a torch file its pickle, was read).
func (f *File) Parsed() bool {
	if f.Format() == ContainerSafetensors {
		return f.Header != nil
	}
	return f.Err == nil || len(f.Located) > 0
}

// Tensors lists the file's tensors in data order.
func (f *File) Tensors() []*Tensor {
	if f.Format() != ContainerSafetensors {
		return f.Located
	}
	if f.Header == nil {
		return nil
	}
	out := make([]*Tensor, len(f.Header.Tensors))
	start := f.Header.DataStart()
	// Offsets come from the file: a header that fails read rule 8 may declare
	// offsets near 2^64, so compare in uint64 against the room the file has and
	// saturate the absolute offset instead of letting it wrap.
	room := uint64(max(f.Size-start, 0))
	for i, ti := range f.Header.Tensors {
		off := start + int64(min(ti.Begin, uint64(math.MaxInt64-start)))
		out[i] = &Tensor{TensorInfo: ti, File: f, Offset: off, Cut: ti.End > room}
	}
	return out
}

// openRegular opens path for reading only if it is a regular file.
func openRegular(path string) (*os.File, os.FileInfo, error) { return OpenRegular(path) }

// OpenRegular opens path for reading only if it is a regular file (a symlink
// is followed). It opens without blocking (O_NONBLOCK where the system has it)
// and then checks the open descriptor, so a FIFO or a device, even one swapped
// in after an earlier stat, is refused at once instead of blocking in open() or
// being read forever. Every file ckpt reads is opened through it. A refusal is
// an *Error of kind ErrSpecialFile.
func OpenRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = notRegular(path, st)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if err := clearNonblock(f); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

func notRegular(path string, st os.FileInfo) error {
	if st.IsDir() {
		return newErr(ErrSpecialFile, path, "", -1, "is a directory, expected a regular file")
	}
	return newErr(ErrSpecialFile, path, "", -1, "not a regular file (%s); it was not read", describeMode(st.Mode()))
}

// describeMode names a file type in words.
func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return m.Type().String()
}

// Size caps of the JSON side files: a side file larger than its cap is refused
// with an ErrSideFileTooLarge finding before anything is allocated for it.
const (
	MaxIndexSize  = 64 << 20 // model.safetensors.index.json (a million tensors take about 80 bytes each)
	MaxConfigSize = 4 << 20  // config.json
)

// capString states a size cap in the unit the documentation uses.
func capString(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ReadSideFile reads a small side file (an index, config.json,
// trainer_state.json, a scheduler or optimizer state to come) of at most
// limit bytes. It opens it with OpenRegular (a FIFO or a device is an
// ErrSpecialFile error, returned at once) and refuses a file larger than limit
// with an ErrSideFileTooLarge error, without reading it.
func ReadSideFile(path string, limit int64) ([]byte, error) {
	f, err := FSFor(path).Open(path, Pread)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tooBig := func() error {
		return newErr(ErrSideFileTooLarge, path, "", -1, "file is larger than %s, the most ckpt reads of such a file; it was not read", capString(limit))
	}
	if f.Size() > limit {
		return nil, tooBig()
	}
	// One read of the size at open: a remote file is then one request.
	data := make([]byte, f.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// CheckUnchanged compares an open source's file with the file whose header was
// read: tensor offsets come from that header, so reading another file (renamed
// over this one), or this one after it changed size or was rewritten, would
// give wrong values. It returns an ErrFileChanged error saying what changed, or
// nil. A File opened without Info (built by hand) is not checked.
func (f *File) CheckUnchanged(now fs.FileInfo) error {
	if f.Info == nil || now == nil {
		return nil
	}
	if was, ok := f.Info.Sys().(*ObjectVersion); ok {
		is, _ := now.Sys().(*ObjectVersion)
		switch {
		case is == nil || is.ETag != was.ETag || !is.LastModified.Equal(was.LastModified):
			return newErr(ErrFileChanged, f.Path, "", -1, "the object was replaced after its header was read (its ETag or Last-Modified changed); inspect it again")
		case now.Size() != f.Size:
			return newErr(ErrFileChanged, f.Path, "", -1, "changed size from %d to %d bytes after its header was read", f.Size, now.Size())
		}
		return nil
	}
	switch {
	case !os.SameFile(f.Info, now):
		return newErr(ErrFileChanged, f.Path, "", -1, "replaced after its header was read (another file now has this name); inspect it again")
	case now.Size() != f.Size:
		return newErr(ErrFileChanged, f.Path, "", -1, "changed size from %d to %d bytes after its header was read; is it still being written?", f.Size, now.Size())
	case !now.ModTime().Equal(f.Info.ModTime()):
		return newErr(ErrFileChanged, f.Path, "", -1, "modified after its header was read; is it still being written?")
	}
	return nil
}
