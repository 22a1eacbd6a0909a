package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/hostile"
)

// TestHostileCorpusRepair hands every malformed checkpoint of the hostile corpus
// to ckpt repair as BAD, with a healthy GOOD: each must end quickly, without a
// panic, with the exit status the case states, and the inputs must be
// unchanged. Either the repair refuses (exit 2, with a diagnostic, leaving
// neither OUT nor a temporary directory beside it), or the damage is
// repairable from GOOD (a truncated file's cut tensors, trailing bytes, an
// index entry for a tensor that is not there) and the exit 0 output must scan
// healthy on its own.
func TestHostileCorpusRepair(t *testing.T) {
	root := t.TempDir()
	cases := hostileCorpus(t)
	good := filepath.Join(root, "good.safetensors")
	if err := hostile.WriteHealthy(good); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(root, "out")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.Name == "million-tensors" && testing.Short() {
			continue
		}
		before := treeDigest(t, c.Path)
		out := filepath.Join(outDir, c.Name)
		if !strings.HasSuffix(c.Path, ".safetensors") {
			out += "-dir"
		} else {
			out += ".safetensors"
		}
		args := []string{"repair", "--no-progress", c.Path, "--from", good, "-o", out}
		r := cliRunBounded(t, 30*time.Second, c.Name, args...)
		checkHostile(t, c, c.Repair, args, r)
		repaired := r.code == 0
		if repaired {
			if s := cliRun(t, "scan", "--no-progress", out); s.code != 0 {
				t.Errorf("%s: repair exit 0 but its output does not scan healthy (exit %d):\n%s", c.Name, s.code, s.stdout)
			}
		}
		if _, err := os.Lstat(out); err == nil && !repaired {
			t.Errorf("%s: a failed repair left %s behind", c.Name, out)
		}
		if repaired {
			if err := os.RemoveAll(out); err != nil {
				t.Fatal(err)
			}
		}
		if after := treeDigest(t, c.Path); after != before {
			t.Errorf("%s: the input changed", c.Name)
		}
	}
	if left, _ := os.ReadDir(outDir); len(left) > 0 {
		t.Errorf("failed repairs left %d entries in the output directory (first: %s)", len(left), left[0].Name())
	}
}

// treeDigest summarises a file or directory tree (names, sizes, modes,
// modification times and contents of regular files) to tell whether it changed.
func treeDigest(t *testing.T, path string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(path, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			return nil
		}
		fmt.Fprintf(&b, "%s %d %v %d\n", p, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() && fi.Size() < 1<<20 {
			data, err := os.ReadFile(p)
			if err == nil {
				fmt.Fprintf(&b, "%x\n", data)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
