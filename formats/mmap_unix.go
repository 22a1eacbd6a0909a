//go:build unix

package formats

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

type mmapSource struct {
	f    *os.File
	data []byte
	path string
}

func mapFile(f *os.File, path string, size int64) (*mmapSource, error) {
	if int64(int(size)) != size {
		return nil, unix.EFBIG
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &mmapSource{f: f, data: data, path: path}, nil
}

func (m *mmapSource) ReadAt(b []byte, off int64) (n int, err error) {
	if off < 0 || off > int64(len(m.data)) || int64(len(b)) > int64(len(m.data))-off {
		return 0, newErr(ErrTruncated, m.path, "", off, "read of %d bytes at %d is past the end of the %d-byte file", len(b), off, len(m.data))
	}
	err = CatchFault(m.path, func() error {
		n = copy(b, m.data[off:])
		return nil
	})
	return n, err
}

func (m *mmapSource) Bytes() []byte { return m.data }
func (m *mmapSource) Size() int64   { return int64(len(m.data)) }
func (m *mmapSource) Path() string  { return m.path }

// Stat describes the mapped file.
func (m *mmapSource) Stat() (fs.FileInfo, error) { return m.f.Stat() }

func (m *mmapSource) Close() error {
	err := unix.Munmap(m.data)
	m.data = nil
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Window maps bytes [off, off+n) of the file on their own, prefaulted where the
// platform can (MAP_POPULATE: one system call instead of a fault per page).
// Closing the window unmaps it, so a scan that maps one window per chunk keeps
// resident memory bounded by the chunks in flight, however large the file.
func (m *mmapSource) Window(off, n int64) (*Window, error) {
	size := int64(len(m.data))
	if off < 0 || n < 0 || off > size || n > size-off {
		return nil, newErr(ErrTruncated, m.path, "", off, "read of %d bytes at %d is past the end of the %d-byte file", n, off, size)
	}
	if n == 0 {
		return &Window{}, nil
	}
	page := int64(unix.Getpagesize())
	start := off / page * page
	mem, err := unix.Mmap(int(m.f.Fd()), start, int(off+n-start), unix.PROT_READ, unix.MAP_SHARED|mapPopulate)
	if err != nil {
		return nil, newErr(ErrFault, m.path, "", off, "cannot map %d bytes at %d: %v", n, off, err)
	}
	return &Window{Data: mem[off-start:], mem: mem}, nil
}

// Close unmaps the window; Data must not be used afterwards.
func (w *Window) Close() error {
	if w.mem == nil {
		return nil
	}
	err := unix.Munmap(w.mem)
	w.mem, w.Data = nil, nil
	return err
}
