package inspect

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
)

// TestScanRefusesAFileChangedSinceItsHeaderWasRead: tensor offsets come from the
// header read when the checkpoint was opened; if the file is then replaced,
// resized or rewritten, the scan must not read the new bytes with the old
// offsets. That file becomes a format finding saying what changed; the other
// file is still scanned.
func TestScanRefusesAFileChangedSinceItsHeaderWasRead(t *testing.T) {
	changes := map[string]func(t *testing.T, path, other string){
		"replaced": func(t *testing.T, path, other string) {
			if err := os.Rename(other, path); err != nil { // a different file takes the name
				t.Fatal(err)
			}
		},
		"changed size": func(t *testing.T, path, _ string) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte{0, 0, 0, 0})
			f.Close()
		},
		"modified": func(t *testing.T, path, _ string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(path, later, later); err != nil {
				t.Fatal(err)
			}
		},
	}
	for what, change := range changes {
		for _, mode := range []formats.SourceMode{formats.Pread, formats.Mmap} {
			rng := rand.New(rand.NewPCG(31, 32))
			dir := t.TempDir()
			a, b := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
			writeST(t, a, mixedTensors(rng), false)
			writeST(t, b, mixedTensors(rng), false)
			other := filepath.Join(t.TempDir(), "other.safetensors")
			writeST(t, other, mixedTensors(rng), false)
			c, err := formats.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			change(t, a, other)
			r, err := Scan(context.Background(), c, Options{Source: mode})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range r.Findings {
				if f.Check == CheckFormat && f.File == a && strings.Contains(f.Message, what) {
					found = true
				}
			}
			if !found || r.Healthy() {
				t.Errorf("%s, %v: no format finding saying the file was %s: %+v", what, mode, what, r.Findings)
			}
			for _, s := range r.Tensors {
				if s.File == a && s.Skipped == "" && s.Numel > 0 { // an empty tensor has nothing to read
					t.Errorf("%s, %v: tensor %s of the changed file was scanned", what, mode, s.Name)
				}
				if s.File == b && s.Skipped != "" {
					t.Errorf("%s, %v: tensor %s of the intact file was skipped", what, mode, s.Name)
				}
			}
		}
	}
}
