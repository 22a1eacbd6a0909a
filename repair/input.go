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

// hashedInput is an input weight file open for the copy, with the running
// SHA-256 of the whole file. The copier reads tensor bytes from it; the hash is
// computed by the hashPipe (see hashpipe.go), either from the very chunks the
// copier reads (fed) or by reading the file on its own.
type hashedInput struct {
	InputFile
	src formats.Source
	h   hash.Hash // written by the hash pipe's goroutines only
	fed bool      // hashed from the copier's reads (plus what they skip)
	pos int64     // fed: bytes [0, pos) are scheduled for hashing (copier's view)
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

// sum finalizes the digest (after the hash pipe has finished).
func (in *hashedInput) sum() string { return hex.EncodeToString(in.h.Sum(nil)) }

// close releases the file.
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
