package formats_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// Every read-ahead hint reads the same bytes, and the names round-trip.
func TestReadAheadHints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.bin")
	want := bytes.Repeat([]byte("0123456789abcdef"), 70000)
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	defer formats.SetReadAhead(formats.SetReadAhead(formats.DefaultReadAhead))
	for _, r := range []formats.ReadAhead{formats.ReadAheadNone, formats.ReadAheadSequential, formats.ReadAheadWillNeed} {
		got, err := formats.ParseReadAhead(r.String())
		if err != nil || got != r {
			t.Fatalf("ParseReadAhead(%q) = %v, %v", r, got, err)
		}
		formats.SetReadAhead(r)
		if formats.CurrentReadAhead() != r {
			t.Fatalf("CurrentReadAhead() = %v after SetReadAhead(%v)", formats.CurrentReadAhead(), r)
		}
		src, err := formats.OpenSource(path, formats.Pread)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(want)-100)
		if _, err := src.ReadAt(buf, 100); err != nil || !bytes.Equal(buf, want[100:]) {
			t.Errorf("%s: read %v, bytes equal %v", r, err, bytes.Equal(buf, want[100:]))
		}
		src.Close()
	}
	if _, err := formats.ParseReadAhead("always"); err == nil {
		t.Error("ParseReadAhead accepted an unknown hint")
	}
}

// The default is the hint the cold-cache benchmark chose.
func TestDefaultReadAheadIsSequential(t *testing.T) {
	if formats.DefaultReadAhead != formats.ReadAheadSequential || formats.CurrentReadAhead() != formats.DefaultReadAhead {
		t.Errorf("default read-ahead %v, current %v; docs/performance.md says sequential", formats.DefaultReadAhead, formats.CurrentReadAhead())
	}
}
