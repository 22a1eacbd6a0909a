package synth_test

import (
	"bytes"
	"io"
	"math"
	"os"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// open opens a checkpoint and fails the test on any error-severity problem.
func openClean(t *testing.T, path string) *formats.Checkpoint {
	t.Helper()
	c, err := formats.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	for _, p := range c.AllProblems() {
		if p.Severity == formats.SevError || p.Severity == formats.SevWarning {
			t.Errorf("%s: unexpected %s problem: %v", path, p.Severity, p.Err)
		}
	}
	return c
}

// tensorData reads a tensor's raw bytes through its file's header.
func tensorData(t *testing.T, c *formats.Checkpoint, name string) []byte {
	t.Helper()
	ten := c.Tensor(name)
	if ten == nil {
		t.Fatalf("%s: no tensor %q", c.Path, name)
	}
	f, err := os.Open(ten.File.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, ten.Length())
	if _, err := io.ReadFull(io.NewSectionReader(f, ten.Offset, ten.Length()), buf); err != nil {
		t.Fatalf("%s: read %q: %v", ten.File.Path, name, err)
	}
	return buf
}

// values decodes every element of a tensor as float64 with the reference decoder.
func values(t *testing.T, c *formats.Checkpoint, name string) []float64 {
	t.Helper()
	ten := c.Tensor(name)
	data := tensorData(t, c, name)
	n := formats.ElementCount(ten.DType, len(data))
	out := make([]float64, n)
	for i := range out {
		out[i] = formats.Element(ten.DType, data, i)
	}
	return out
}

// meanStd in float64.
func meanStd(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)))
}

// writeTiny writes a Tiny checkpoint into a fresh temp dir and returns the dir.
func writeTiny(t *testing.T, o synth.Options) string {
	t.Helper()
	if o.Arch.Name == "" {
		o.Arch = synth.Tiny
	}
	dir := t.TempDir()
	if err := synth.WriteCheckpoint(dir, o); err != nil {
		t.Fatalf("WriteCheckpoint: %v", err)
	}
	return dir
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameExcept fails unless a and b differ only inside the given [off, off+n) spans.
func sameExcept(t *testing.T, a, b []byte, spans [][2]int) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("length changed: %d → %d", len(a), len(b))
	}
	a2, b2 := bytes.Clone(a), bytes.Clone(b)
	for _, s := range spans {
		for i := s[0]; i < s[0]+s[1]; i++ {
			a2[i], b2[i] = 0, 0
		}
	}
	if !bytes.Equal(a2, b2) {
		for i := range a2 {
			if a2[i] != b2[i] {
				t.Fatalf("byte %d changed outside the injected elements", i)
			}
		}
	}
}
