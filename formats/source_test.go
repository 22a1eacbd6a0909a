package formats_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

func randomFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return writeFile(t, t.TempDir(), "data.bin", b), b
}

func TestSourcesReturnTheSameBytes(t *testing.T) {
	path, want := randomFile(t, 3<<20+123)
	pr, err := formats.OpenSource(path, formats.Pread)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	mm, err := formats.OpenSource(path, formats.Mmap)
	if err != nil {
		t.Fatal(err)
	}
	defer mm.Close()
	if _, ok := mm.(formats.Mapped); !ok && runtime.GOOS != "windows" {
		t.Fatalf("mmap source %T is not Mapped", mm)
	}
	for _, s := range []formats.Source{pr, mm} {
		if s.Size() != int64(len(want)) || s.Path() != path {
			t.Errorf("%T: size %d path %s", s, s.Size(), s.Path())
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		off := rng.IntN(len(want))
		n := rng.IntN(min(len(want)-off, 1<<16) + 1)
		a, b := make([]byte, n), make([]byte, n)
		na, erra := pr.ReadAt(a, int64(off))
		nb, errb := mm.ReadAt(b, int64(off))
		if erra != nil || errb != nil || na != n || nb != n {
			t.Fatalf("ReadAt(%d, %d): %d %v / %d %v", n, off, na, erra, nb, errb)
		}
		if !bytes.Equal(a, want[off:off+n]) || !bytes.Equal(b, a) {
			t.Fatalf("ReadAt(%d, %d): bytes differ", n, off)
		}
	}
	if m, ok := mm.(formats.Mapped); ok {
		err := formats.CatchFault(path, func() error {
			if !bytes.Equal(m.Bytes(), want) {
				t.Error("Bytes() differs from the file")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadsPastTheEndFail(t *testing.T) {
	path, want := randomFile(t, 1000)
	for _, mode := range []formats.SourceMode{formats.Pread, formats.Mmap} {
		s, err := formats.OpenSource(path, mode)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			off int64
			n   int
		}{{990, 11}, {1000, 1}, {1001, 0}, {-1, 1}, {1 << 62, 1}, {0, 1001}} {
			if _, err := s.ReadAt(make([]byte, c.n), c.off); !errors.Is(err, formats.ErrTruncated) {
				t.Errorf("%v ReadAt(%d bytes at %d): %v", mode, c.n, c.off, err)
			}
		}
		// The exact end is fine, and so is an empty read there.
		b := make([]byte, 10)
		if n, err := s.ReadAt(b, 990); err != nil || n != 10 || !bytes.Equal(b, want[990:]) {
			t.Errorf("%v last 10 bytes: %d %v", mode, n, err)
		}
		if _, err := s.ReadAt(nil, 1000); err != nil {
			t.Errorf("%v empty read at the end: %v", mode, err)
		}
		s.Close()
	}
}

// A mapped file truncated under us: reads yield ErrFault, the process lives.
func TestMappedFileTruncatedWhileMapped(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mmap source on this platform")
	}
	path, _ := randomFile(t, 1<<20)
	s, err := formats.OpenSource(path, formats.Mmap)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, ok := s.(formats.Mapped)
	if !ok {
		t.Fatalf("%T is not Mapped", s)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	var sum byte
	err = formats.CatchFault(path, func() error {
		b := m.Bytes()
		for i := len(b) - 1; i >= 0; i -= 4096 {
			sum += b[i]
		}
		return nil
	})
	if !errors.Is(err, formats.ErrFault) {
		t.Fatalf("touching truncated mapped memory: %v (sum %d)", err, sum)
	}
	if fe := asError(t, err); fe.File != path {
		t.Errorf("fault names %q, want %q", fe.File, path)
	}
	if _, err := s.ReadAt(make([]byte, 100), 500_000); !errors.Is(err, formats.ErrFault) {
		t.Errorf("ReadAt on a truncated mapping: %v", err)
	}
	// The pread source reports the shrink as truncation.
	os.WriteFile(path, make([]byte, 1<<20), 0o644)
	p, err := formats.OpenSource(path, formats.Pread)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	os.Truncate(path, 100)
	if _, err := p.ReadAt(make([]byte, 100), 500_000); !errors.Is(err, formats.ErrTruncated) {
		t.Errorf("pread on a shrunk file: %v", err)
	}
}

func TestCatchFaultPassesOtherPanicsAndErrors(t *testing.T) {
	sentinel := errors.New("x")
	if err := formats.CatchFault("p", func() error { return sentinel }); err != sentinel {
		t.Errorf("error not passed through: %v", err)
	}
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want the original panic", r)
		}
	}()
	formats.CatchFault("p", func() error { panic("boom") })
	t.Error("a non-fault panic was swallowed")
}

func TestOpenSourceEdgeCases(t *testing.T) {
	dir := t.TempDir()
	empty := writeFile(t, dir, "empty", nil)
	s, err := formats.OpenSource(empty, formats.Mmap) // mmap of an empty file fails: falls back
	if err != nil {
		t.Fatal(err)
	}
	if s.Size() != 0 {
		t.Errorf("size %d", s.Size())
	}
	if _, err := s.ReadAt(make([]byte, 1), 0); !errors.Is(err, formats.ErrTruncated) {
		t.Errorf("read of an empty file: %v", err)
	}
	s.Close()
	if _, err := formats.OpenSource(dir, formats.Pread); err == nil {
		t.Error("a directory opened as a source")
	}
	if _, err := formats.OpenSource(filepath.Join(dir, "absent"), formats.Mmap); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	for in, want := range map[string]formats.SourceMode{"": formats.Pread, "pread": formats.Pread, "mmap": formats.Mmap} {
		if got, err := formats.ParseSourceMode(in); err != nil || got != want {
			t.Errorf("ParseSourceMode(%q) = %v %v", in, got, err)
		}
	}
	if _, err := formats.ParseSourceMode("mmmap"); err == nil {
		t.Error("bad mode accepted")
	}
}
