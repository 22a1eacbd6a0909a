package synth_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// The committed example must be exactly what the generator makes today, so the
// README's first command always scans what the generator documents.
func TestCommittedExampleIsReproducible(t *testing.T) {
	committed := filepath.Join(testenv.ModuleRoot(t), filepath.FromSlash(synth.ExampleDir))
	if _, err := os.Stat(committed); err != nil {
		t.Fatalf("the example checkpoint is missing: %v", err)
	}
	fresh := t.TempDir()
	if err := synth.WriteCheckpoint(fresh, synth.Example); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(committed)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	freshEntries, _ := os.ReadDir(fresh)
	if len(freshEntries) != len(entries) {
		t.Errorf("committed example holds %v, the generator writes %d files", names, len(freshEntries))
	}
	for _, e := range freshEntries {
		want := readFile(t, filepath.Join(fresh, e.Name()))
		got, err := os.ReadFile(filepath.Join(committed, e.Name()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the generator writes (%v); regenerate with\n"+
				"  go run ./cmd/ckpt-synth example -o %s --force", e.Name(), err, synth.ExampleDir)
		}
	}
	c := openClean(t, committed)
	if len(c.Tensors) != len(synth.Tiny.Specs(synth.Example.DType)) {
		t.Errorf("example has %d tensors", len(c.Tensors))
	}
	if st, _ := os.Stat(filepath.Join(committed, "model.safetensors")); st.Size() > 64<<10 {
		t.Errorf("the example is %d bytes: keep it small", st.Size())
	}
}
