package formats

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// writeShard writes a small valid safetensors file and returns its bytes.
func writeIncompleteFixture(t *testing.T, dir string, withState bool, cut int) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, []TensorSpec{{Name: "w", DType: F32, Shape: []uint64{64}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("w", bytes.NewReader(make([]byte, 256))); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), data[:len(data)-cut], 0o644); err != nil {
		t.Fatal(err)
	}
	if withState {
		if err := os.WriteFile(filepath.Join(dir, "trainer_state.json"), []byte(`{"global_step":10,"log_history":[]}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIncompleteSaveIsNotCorruption(t *testing.T) {
	root := t.TempDir()
	cases := []struct {
		name      string
		dir       string
		withState bool
		cut       int
		wantIncom bool // errors.Is(problem, ErrIncomplete)
		wantSev   Severity
	}{
		{"mid-save: shard still growing", "checkpoint-20", false, 100, true, SevError},
		{"finished save that is truncated", "checkpoint-30", true, 100, false, SevError},
		{"weights complete, state not yet written", "checkpoint-40", false, 0, true, SevWarning},
		{"not a trainer directory", "exported", false, 100, false, SevError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, tc.dir)
			writeIncompleteFixture(t, dir, tc.withState, tc.cut)
			c, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			probs := c.AllProblems()
			if len(probs) != 1 {
				t.Fatalf("want one problem, got %d: %v", len(probs), probs)
			}
			p := probs[0]
			if got := errors.Is(p.Err, ErrIncomplete); got != tc.wantIncom {
				t.Errorf("errors.Is(ErrIncomplete) = %v, want %v (%v)", got, tc.wantIncom, p.Err)
			}
			if p.Severity != tc.wantSev {
				t.Errorf("severity %s, want %s", p.Severity, tc.wantSev)
			}
			if tc.cut > 0 && !errors.Is(p.Err, ErrTruncated) {
				t.Errorf("a short shard must still be ErrTruncated: %v", p.Err)
			}
			if c.Incomplete != tc.wantIncom {
				t.Errorf("Incomplete = %v, want %v", c.Incomplete, tc.wantIncom)
			}
		})
	}
}
