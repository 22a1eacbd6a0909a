package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

func call(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(args, &out, &errb)
	return out.String(), err
}

func TestCheckpointCorruptAndRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	if _, err := call(t, "checkpoint", "--arch", "tiny", "--dtype", "float32", "--shards", "2", "-o", dir); err != nil {
		t.Fatal(err)
	}
	c, err := formats.Open(dir)
	if err != nil || c.Layout != formats.LayoutSharded || len(c.Files) != 2 || c.Tensors[0].DType != formats.F32 {
		t.Fatalf("checkpoint: %v %+v", err, c)
	}
	if _, err := call(t, "checkpoint", "--arch", "tiny", "-o", dir, "--shards", "2"); err == nil {
		t.Error("wrote over existing shards without --force")
	}
	name := "model.layers.0.mlp.up_proj.weight"
	if _, err := call(t, "corrupt", "set-values", dir, "--tensor", name, "--elem", "1=nan", "--elem", "2=-inf", "--elem", "3=1e30"); err != nil {
		t.Fatal(err)
	}
	c, _ = formats.Open(dir)
	ten := c.Tensor(name)
	buf := make([]byte, ten.Length())
	f, err := os.Open(ten.File.Path)
	if err != nil {
		t.Fatal(err)
	}
	f.ReadAt(buf, ten.Offset)
	f.Close()
	if v := formats.Element(ten.DType, buf, 1); !math.IsNaN(v) {
		t.Errorf("element 1 = %g", v)
	}
	if v := formats.Element(ten.DType, buf, 2); !math.IsInf(v, -1) {
		t.Errorf("element 2 = %g", v)
	}
	if v := formats.Element(ten.DType, buf, 3); v != float64(float32(1e30)) {
		t.Errorf("element 3 = %g", v)
	}
	if _, err := call(t, "corrupt", "remove-shard", dir, "--shard", "1"); err != nil {
		t.Fatal(err)
	}
	c, _ = formats.Open(dir)
	missing := false
	for _, p := range c.AllProblems() {
		missing = missing || errors.Is(p.Err, formats.ErrMissingShard)
	}
	if !missing {
		t.Error("remove-shard: no missing-shard problem")
	}

	out, err := call(t, "run", "--arch", "tiny", "--checkpoints", "12", "--json", "-o", filepath.Join(t.TempDir(), "run"))
	if err != nil {
		t.Fatal(err)
	}
	var truth synth.RunTruth
	if err := json.Unmarshal([]byte(out), &truth); err != nil || len(truth.Steps) != 12 || truth.FirstUnhealthy != 1200 {
		t.Errorf("run --json: %v %+v", err, truth)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, {"nope"}, {"checkpoint"}, {"checkpoint", "-o", t.TempDir(), "--arch", "gpt9"},
		{"checkpoint", "-o", t.TempDir(), "--dtype", "int7"}, {"checkpoint", "-o", t.TempDir(), "--dtype", "c128"}, {"corrupt", "explode", "x"},
		{"corrupt", "set-values", "x"}, {"corrupt", "set-values", t.TempDir(), "--elem", "1=2"},
	} {
		if _, err := call(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if out, err := call(t, "--help"); err != nil || !strings.Contains(out, "corrupt") {
		t.Errorf("--help: %v %q", err, out)
	}
}

func TestExampleWritesBothExamples(t *testing.T) {
	dir := t.TempDir()
	out, err := call(t, "example", "-o", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "tiny-qwen2: 1 files, 51 tensors") || !strings.Contains(out, "run: 8 checkpoints") {
		t.Errorf("example printed %q", out)
	}
	truth, _ := synth.ExampleRun.Truth()
	for _, d := range append([]string{"tiny-qwen2"}, truth.Dirs...) {
		p := filepath.Join(dir, d)
		if d != "tiny-qwen2" {
			p = filepath.Join(dir, "run", d)
		}
		if _, err := formats.Open(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := call(t, "example", "-o", dir); err == nil {
		t.Error("example wrote over existing files without --force")
	}
	if _, err := call(t, "example", "-o", dir, "--force"); err != nil {
		t.Errorf("example --force: %v", err)
	}
}
