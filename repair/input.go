package repair

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/ckpt-tool/ckpt/formats"
)

// InputFile is one input file of a repair, as recorded in the provenance
// entry: SHA256 is the digest of the whole file for BAD's files and for the
// indexes; GOOD's weight files have none (the digest of every tensor taken
// from them is recorded with the tensor instead).
type InputFile struct {
	Role   string `json:"role"` // "bad" or "good"
	Path   string `json:"path"` // absolute
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256,omitempty"`

	digest bool // a whole-file digest is recorded
}

// input is an input weight file open for the copy: a local file, or a remote
// one read through its store (formats.FS).
type input struct {
	path string // absolute, or the URL of a remote file
	f    inputFile
	osf  *os.File // the local file, for copy_file_range; nil for a remote one
	size int64    // when planned (and checked when opened)
}

// inputFile is what the copy needs of an input: positioned reads.
type inputFile interface {
	io.ReaderAt
	io.Closer
}

// openFile opens an input for reading: a local regular file (with its
// *os.File, for the kernel's copy), or a remote file through its store.
func openFile(path string) (f inputFile, osf *os.File, size int64, err error) {
	if formats.IsRemote(path) {
		src, err := formats.OpenSource(path, formats.Pread)
		if err != nil {
			return nil, nil, 0, err
		}
		return src, nil, src.Size(), nil
	}
	osf, st, err := formats.OpenRegular(path)
	if err != nil {
		return nil, nil, 0, err
	}
	return osf, osf, st.Size(), nil
}

func openInput(path string, p *Plan) (*input, error) {
	if err := p.checkStamp(path); err != nil {
		return nil, err
	}
	f, osf, size, err := openFile(path)
	if err != nil {
		return nil, err
	}
	if want, ok := p.stamps[path]; ok && size != want.size {
		f.Close()
		return nil, errAt(ErrInputChanged, path, "", "the file changed while the repair was running (size %d → %d); nothing was written, run the repair again", want.size, size)
	}
	abs, err := absPath(path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &input{path: abs, f: f, osf: osf, size: size}, nil
}

// absPath makes a local path absolute; a URL is already.
func absPath(p string) (string, error) {
	if formats.IsRemote(p) {
		return p, nil
	}
	return filepath.Abs(p)
}

// readAt fills b from offset off, failing when the file has shrunk.
func (in *input) readAt(b []byte, off int64) error {
	n, err := in.f.ReadAt(b, off)
	if err == io.EOF && n == len(b) {
		err = nil
	}
	if err != nil {
		if err == io.EOF {
			return errAt(ErrInputChanged, in.path, "", "the file ended early (%d bytes expected at offset %d): it changed while the repair was running", len(b), off)
		}
		return fmt.Errorf("%s: %w", in.path, err)
	}
	return nil
}

// hashJob is a run of bytes of an input to hash, and where its digest goes.
// For a PyTorch view (view set), the run is the view's n bytes of elements in
// C order, read through its strides: the bytes written for it.
type hashJob struct {
	in     *input
	off, n int64
	dst    *string
	view   *formats.Tensor
}

// hasher computes SHA-256 digests on goroutines of their own while the copy
// runs, each run of bytes read once, streaming (one buffer per goroutine).
// Hashing costs more CPU than the kernel's copy, so it runs beside it rather
// than before or after it.
type hasher struct {
	wg   sync.WaitGroup
	stop chan struct{}
	mu   sync.Mutex
	err  error
	once sync.Once
}

// startHashing runs each group of jobs, in order, on a goroutine of its own.
func startHashing(bufBytes int, groups ...[]hashJob) *hasher {
	h := &hasher{stop: make(chan struct{})}
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		h.wg.Add(1)
		go func(jobs []hashJob) {
			defer h.wg.Done()
			buf := make([]byte, bufBytes)
			for _, j := range jobs {
				sum, err := h.hash(j, buf)
				if err != nil {
					h.fail(err)
					return
				}
				*j.dst = sum
			}
		}(g)
	}
	return h
}

func (h *hasher) hash(j hashJob, buf []byte) (string, error) {
	d := sha256.New()
	var view *viewSource
	if j.view != nil {
		view = newViewSource(j.in, j.view)
	}
	for pos, end := j.off, j.off+j.n; pos < end; {
		select {
		case <-h.stop:
			return "", errHashStopped
		default:
		}
		b := buf[:min(int64(len(buf)), end-pos)]
		if view != nil {
			if err := view.read(b); err != nil {
				return "", fmt.Errorf("hashing: %w", err)
			}
		} else if err := j.in.readAt(b, pos); err != nil {
			return "", fmt.Errorf("hashing: %w", err)
		}
		d.Write(b)
		pos += int64(len(b))
	}
	return hex.EncodeToString(d.Sum(nil)), nil
}

var errHashStopped = fmt.Errorf("hashing stopped")

func (h *hasher) fail(err error) {
	h.mu.Lock()
	if h.err == nil {
		h.err = err
	}
	h.mu.Unlock()
}

// wait returns once every input is hashed, with the first error.
func (h *hasher) wait() error {
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// abort stops the hashing and waits for its goroutines.
func (h *hasher) abort() {
	h.once.Do(func() { close(h.stop) })
	h.wg.Wait()
}

// hashDigest is the SHA-256 of a reader, for the small files (indexes).
func hashDigest(r io.Reader) (string, int64, error) {
	d := sha256.New()
	n, err := io.Copy(d, r)
	return hex.EncodeToString(d.Sum(nil)), n, err
}

// hashWhole hashes a small input file (an index) in one go.
func hashWhole(role, path string) (InputFile, error) {
	f, _, size, err := openFile(path)
	if err != nil {
		return InputFile{}, err
	}
	defer f.Close()
	sum, n, err := hashDigest(io.NewSectionReader(f, 0, size))
	if err != nil {
		return InputFile{}, fmt.Errorf("%s: %w", path, err)
	}
	abs, _ := absPath(path)
	return InputFile{Role: role, Path: abs, Bytes: n, SHA256: sum}, nil
}

// viewSource reads a PyTorch view's elements in C order from an input, as they
// are written: through the view's strides (formats.ViewReader).
type viewSource struct {
	in *input
	t  *formats.Tensor
	r  *formats.ViewReader
}

func newViewSource(in *input, t *formats.Tensor) *viewSource {
	return &viewSource{in: in, t: t, r: formats.NewViewReader(in.f, in.size, t)}
}

// read fills b with the next bytes of the view, failing when the file has
// shrunk under it.
func (v *viewSource) read(b []byte) error {
	if _, err := io.ReadFull(v.r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return errAt(ErrInputChanged, v.in.path, v.t.Name, "the file ended before the tensor's elements did: it changed while the repair was running")
		}
		return fmt.Errorf("%s: %w", v.in.path, err)
	}
	return nil
}
