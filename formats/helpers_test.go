package formats_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/testenv"

	"github.com/ckpt-tool/ckpt/formats"
)

// rawFile assembles a safetensors file from a header text and a data section,
// without any validation: the way to build malformed files.
func rawFile(header string, data []byte) []byte {
	out := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

// readBytes runs the header reader over an in-memory file.
func readBytes(b []byte) (*formats.Header, error) {
	return formats.ReadHeader("test.safetensors", bytes.NewReader(b), int64(len(b)))
}

// writeFile writes b to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tensorData is the data of one tensor to be written, keyed by name.
type tensorData map[string][]byte

// encode writes specs with the package writer; data[name] (or a deterministic
// filler when absent) is each tensor's bytes.
func encode(t testing.TB, specs []formats.TensorSpec, data tensorData, md map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := formats.NewWriter(&buf, specs, md)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for _, s := range w.Order() {
		b, ok := data[s.Name]
		if !ok {
			n, err := s.ByteLen()
			if err != nil {
				t.Fatal(err)
			}
			b = make([]byte, n)
			for i := range b {
				b[i] = byte(i*7 + len(s.Name))
			}
		}
		if err := w.WriteTensor(s.Name, bytes.NewReader(b)); err != nil {
			t.Fatalf("WriteTensor %s: %v", s.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// asError extracts the package's *Error, failing the test when err is not one.
func asError(t testing.TB, err error) *formats.Error {
	t.Helper()
	var fe *formats.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *formats.Error", err, err)
	}
	return fe
}

// realdataDir is the shared corpus of real files (absent: a failure in CI, a skip elsewhere).
func realdataDir(t testing.TB) string { return testenv.Realdata(t) }

// problemsOf filters a checkpoint's problems by severity.
func problemsOf(c *formats.Checkpoint, sev formats.Severity) []formats.Problem {
	var out []formats.Problem
	for _, p := range c.AllProblems() {
		if p.Severity == sev {
			out = append(out, p)
		}
	}
	return out
}

// findProblem returns the first problem whose error matches kind, or nil.
func findProblem(ps []formats.Problem, kind error) *formats.Problem {
	for i := range ps {
		if errors.Is(ps[i].Err, kind) {
			return &ps[i]
		}
	}
	return nil
}
