//go:build unix

package formats

import (
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
	_ = unix.Madvise(data, unix.MADV_SEQUENTIAL)
	_ = unix.Madvise(data, unix.MADV_WILLNEED)
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

func (m *mmapSource) Close() error {
	err := unix.Munmap(m.data)
	m.data = nil
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}
