package repair

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/ckpt-tool/ckpt/formats"
)

// InputFile is one input file of a repair and its SHA-256, as recorded in the
// provenance entry.
type InputFile struct {
	Role   string `json:"role"` // "bad" or "good"
	Path   string `json:"path"` // absolute
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// hashedInput reads an input file and hashes it on the way: the hash covers
// the prefix read so far, and a read that skips ahead first reads (and hashes)
// the skipped bytes, so that a file read in order is read exactly once. finish
// reads whatever was never read. Reads that go back are served but not hashed
// again.
type hashedInput struct {
	InputFile
	src formats.Source
	h   hash.Hash
	pos int64 // bytes hashed: [0, pos)
}

func openHashed(role, path string, p *Plan) (*hashedInput, error) {
	if err := p.checkStamp(path); err != nil {
		return nil, err
	}
	src, err := formats.OpenSource(path, formats.Pread)
	if err != nil {
		return nil, err
	}
	if want, ok := p.stamps[path]; ok && src.Size() != want.size {
		src.Close()
		return nil, errAt(ErrInputChanged, path, "", "the file changed while the repair was running (size %d → %d); nothing was written, run the repair again", want.size, src.Size())
	}
	abs, err := absPath(path)
	if err != nil {
		src.Close()
		return nil, err
	}
	return &hashedInput{InputFile: InputFile{Role: role, Path: abs, Bytes: src.Size()}, src: src, h: sha256.New()}, nil
}

func absPath(p string) (string, error) { return filepath.Abs(p) }

// readAt fills b from offset off; scratch is a buffer for skipped bytes.
func (in *hashedInput) readAt(b []byte, off int64, scratch []byte) error {
	if off > in.pos {
		if err := in.advance(off, scratch); err != nil {
			return err
		}
	}
	if _, err := in.src.ReadAt(b, off); err != nil {
		return err
	}
	if off <= in.pos && off+int64(len(b)) > in.pos {
		in.h.Write(b[in.pos-off:])
		in.pos = off + int64(len(b))
	}
	return nil
}

// advance reads and hashes [pos, to).
func (in *hashedInput) advance(to int64, scratch []byte) error {
	for in.pos < to {
		n := min(int64(len(scratch)), to-in.pos)
		b := scratch[:n]
		if _, err := in.src.ReadAt(b, in.pos); err != nil {
			return err
		}
		in.h.Write(b)
		in.pos += n
	}
	return nil
}

// finish hashes the rest of the file and closes it.
func (in *hashedInput) finish(scratch []byte) error {
	defer in.src.Close()
	if err := in.advance(in.src.Size(), scratch); err != nil {
		return err
	}
	in.SHA256 = hex.EncodeToString(in.h.Sum(nil))
	return nil
}

// close releases the file without finishing the hash.
func (in *hashedInput) close() { in.src.Close() }

// hashWhole hashes a small input file (an index) in one go.
func hashWhole(role, path string) (InputFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return InputFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return InputFile{}, fmt.Errorf("%s: %w", path, err)
	}
	abs, _ := absPath(path)
	return InputFile{Role: role, Path: abs, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
