//go:build !unix

package formats

import (
	"errors"
	"os"
)

type mmapSource struct{ preadSource }

func (m *mmapSource) Bytes() []byte { return nil }

func mapFile(f *os.File, path string, size int64) (*mmapSource, error) {
	return nil, errors.New("mmap is not supported on this platform")
}

// Window is not available where files are not mapped.
func (m *mmapSource) Window(off, n int64) (*Window, error) {
	return nil, errors.New("mmap is not supported on this platform")
}

// Close does nothing where files are not mapped.
func (w *Window) Close() error { return nil }
