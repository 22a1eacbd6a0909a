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
