package inspect

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// expected is realdata/expected.json.
type expected struct {
	Damaged map[string]struct {
		ScanExit   *int   `json:"scan_exit"`
		Check      string `json:"check"`
		NaNTotal   uint64 `json:"nan_total"`
		NaNTensors int    `json:"nan_tensors"`
	} `json:"damaged"`
}

// realCheckpoints lists the scan targets of the real files: every directory
// holding a sharded index, and every other .safetensors file, relative to dir.
func realCheckpoints(t *testing.T, dir string) []string {
	var out []string
	sharded := map[string]bool{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".safetensors.index.json") {
			sharded[filepath.Dir(p)] = true
		}
		return nil
	})
	for d := range sharded {
		rel, _ := filepath.Rel(dir, d)
		out = append(out, rel)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".safetensors") && !sharded[filepath.Dir(p)] {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// TestRealData scans every real file: the healthy ones must give no error
// finding, each damaged one the finding expected.json names, and the diverged
// model exactly its 59725 NaN in 14 tensors.
func TestRealData(t *testing.T) {
	dir := realdata(t)
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp expected
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	targets := realCheckpoints(t, dir)
	if len(targets) < 40 {
		t.Fatalf("only %d real checkpoints found", len(targets))
	}
	for _, rel := range targets {
		r, err := ScanPath(context.Background(), filepath.Join(dir, rel), Options{})
		if err != nil {
			t.Errorf("%s: scan failed: %v", rel, err)
			continue
		}
		want, damaged := exp.Damaged[rel]
		if !damaged {
			for _, f := range r.Findings {
				if f.Severity == "error" {
					t.Errorf("%s: healthy file has an error finding: %+v", rel, f)
				}
			}
			continue
		}
		found := false
		for _, f := range r.Findings {
			found = found || (f.Severity == "error" && f.Check == want.Check)
		}
		if !found || r.Healthy() {
			t.Errorf("%s: want an error finding of check %q, got %+v", rel, want.Check, r.Findings)
		}
		if want.NaNTotal > 0 {
			var nan uint64
			tensors := 0
			for _, s := range r.Tensors {
				nan += s.NaN
				if s.NaN > 0 {
					tensors++
				}
			}
			if nan != want.NaNTotal || tensors != want.NaNTensors || r.Summary.NonFiniteTensors != want.NaNTensors {
				t.Errorf("%s: %d NaN in %d tensors (summary %d), want %d in %d", rel, nan, tensors, r.Summary.NonFiniteTensors, want.NaNTotal, want.NaNTensors)
			}
		}
	}
}
