package repair

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// InputFile is one input file of a repair and its SHA-256, as recorded in the
// provenance entry.
type InputFile struct {
	Role   string `json:"role"` // "bad" or "good"
	Path   string `json:"path"` // absolute
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// input is an input weight file open for the copy.
type input struct {
	InputFile
	f    *os.File
	size int64 // when planned (and checked when opened)
}

func openInput(role, path string, p *Plan) (*input, error) {
	if err := p.checkStamp(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if want, ok := p.stamps[path]; ok && st.Size() != want.size {
		f.Close()
		return nil, errAt(ErrInputChanged, path, "", "the file changed while the repair was running (size %d → %d); nothing was written, run the repair again", want.size, st.Size())
	}
	abs, err := absPath(path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &input{InputFile: InputFile{Role: role, Path: abs, Bytes: st.Size()}, f: f, size: st.Size()}, nil
}

func absPath(p string) (string, error) { return filepath.Abs(p) }

// readAt fills b from offset off, failing when the file has shrunk.
func (in *input) readAt(b []byte, off int64) error {
	n, err := in.f.ReadAt(b, off)
	if err == io.EOF && n == len(b) {
		err = nil
	}
	if err != nil {
		if err == io.EOF {
			return errAt(ErrInputChanged, in.Path, "", "the file ended early (%d bytes expected at offset %d): it changed while the repair was running", len(b), off)
		}
		return fmt.Errorf("%s: %w", in.Path, err)
	}
	return nil
}

// hasher computes the SHA-256 of input files on goroutines of their own while
// the copy runs: each file is read once from start to end (streaming, one
// buffer per goroutine). Hashing costs about as much CPU as the copy, so it runs
// beside it rather than before or after it.
type hasher struct {
	wg   sync.WaitGroup
	stop chan struct{}
	mu   sync.Mutex
	err  error
	once sync.Once
}

// startHashing hashes each group of inputs on its own goroutine, in order,
// filling their SHA256 fields.
func startHashing(bufBytes int, groups ...[]*input) *hasher {
	h := &hasher{stop: make(chan struct{})}
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		h.wg.Add(1)
		go func(ins []*input) {
			defer h.wg.Done()
			buf := make([]byte, bufBytes)
			for _, in := range ins {
				sum, err := h.hashFile(in, buf)
				if err != nil {
					h.fail(err)
					return
				}
				in.SHA256 = sum
			}
		}(g)
	}
	return h
}

func (h *hasher) hashFile(in *input, buf []byte) (string, error) {
	d := sha256.New()
	for pos := int64(0); pos < in.size; {
		select {
		case <-h.stop:
			return "", errHashStopped
		default:
		}
		b := buf[:min(int64(len(buf)), in.size-pos)]
		if err := in.readAt(b, pos); err != nil {
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
	f, err := os.Open(path)
	if err != nil {
		return InputFile{}, err
	}
	defer f.Close()
	sum, n, err := hashDigest(f)
	if err != nil {
		return InputFile{}, fmt.Errorf("%s: %w", path, err)
	}
	abs, _ := absPath(path)
	return InputFile{Role: role, Path: abs, Bytes: n, SHA256: sum}, nil
}
