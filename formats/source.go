package formats

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
)

// SourceMode selects how tensor bytes are read.
type SourceMode int

const (
	// Pread reads with positioned reads into the caller's buffer (streaming).
	Pread SourceMode = iota
	// Mmap maps the file read-only: zero-copy random access.
	Mmap
)

func (m SourceMode) String() string {
	if m == Mmap {
		return "mmap"
	}
	return "pread"
}

// ParseSourceMode accepts "pread" or "mmap".
func ParseSourceMode(s string) (SourceMode, error) {
	switch s {
	case "pread", "":
		return Pread, nil
	case "mmap":
		return Mmap, nil
	}
	return Pread, fmt.Errorf("unknown byte source %q (want pread or mmap)", s)
}

// Source is an open file's bytes. ReadAt never reads past Size (the size at open
// time); a file that shrinks afterwards yields an error, never a crash.
type Source interface {
	io.ReaderAt
	Size() int64
	Path() string
	Close() error
	// Stat describes the open file (not whatever has its path now).
	Stat() (fs.FileInfo, error)
}

// Mapped is a Source whose whole content is addressable in memory. Touching
// Bytes() must happen inside CatchFault: the file may be truncated under us.
type Mapped interface {
	Source
	Bytes() []byte
	// Window maps bytes [off, off+n) on their own; see Window.
	Window(off, n int64) (*Window, error)
}

// Window is a mapped byte range of a file. Data is exactly the range asked for;
// touch it only inside CatchFault, and Close the window when done.
type Window struct {
	Data []byte
	mem  []byte // the page-aligned mapping Data lies in
}

// OpenSource opens path for reading with the given mode. Empty files and
// platforms without mmap fall back to pread.
func OpenSource(path string, mode SourceMode) (Source, error) { return sourceOpener(path, mode) }

// sourceOpener is how OpenSource opens files; fault-injection tests replace it.
var sourceOpener = openSource

// SetSourceOpener replaces how byte sources are opened, so that tests can inject
// faults (a read that fails with EIO, a file that vanishes) into every engine that
// reads tensor data. It returns a function that restores the default. Tests only:
// it is not safe to call while a scan is running.
func SetSourceOpener(open func(path string, mode SourceMode) (Source, error)) (restore func()) {
	old := sourceOpener
	sourceOpener = open
	return func() { sourceOpener = old }
}

// DefaultOpenSource is the opener SetSourceOpener replaces, for wrappers to call.
func DefaultOpenSource(path string, mode SourceMode) (Source, error) { return openSource(path, mode) }

// openSource opens path from the store that holds it (FSFor).
func openSource(path string, mode SourceMode) (Source, error) { return FSFor(path).Open(path, mode) }

// openLocalSource opens a local file: mapped, or read with pread.
func openLocalSource(path string, mode SourceMode) (Source, error) {
	f, st, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	if mode == Mmap && st.Size() > 0 {
		if m, err := mapFile(f, path, st.Size()); err == nil {
			return m, nil
		}
	}
	adviseReadAhead(f, CurrentReadAhead())
	return &preadSource{f: f, size: st.Size(), path: path}, nil
}

type preadSource struct {
	f    *os.File
	size int64
	path string
}

func (p *preadSource) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off > p.size || int64(len(b)) > p.size-off {
		return 0, newErr(ErrTruncated, p.path, "", off, "read of %d bytes at %d is past the end of the %d-byte file", len(b), off, p.size)
	}
	n, err := p.f.ReadAt(b, off)
	if err == io.EOF && n < len(b) {
		return n, newErr(ErrTruncated, p.path, "", off+int64(n), "file shrank while being read: %d bytes expected at offset %d, got %d", len(b), off, n)
	}
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("%s: %w", p.path, err)
	}
	return n, nil
}

func (p *preadSource) Size() int64                { return p.size }
func (p *preadSource) Path() string               { return p.path }
func (p *preadSource) Close() error               { return p.f.Close() }
func (p *preadSource) Stat() (fs.FileInfo, error) { return p.f.Stat() }

// CatchFault runs fn with SetPanicOnFault enabled in this goroutine and turns a
// memory fault (SIGBUS from a mapped file truncated while mapped) into ErrFault.
// Every goroutine that touches mapped memory must go through it.
func CatchFault(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); ok {
				err = newErr(ErrFault, path, "", -1, "memory fault while reading the mapped file: it was truncated or replaced while being read")
				return
			}
			panic(r)
		}
	}()
	return fn()
}
