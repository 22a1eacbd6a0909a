package repair

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// TestRepairRealDivergedModel repairs a real diverged model (59725 of 59981 F32
// values NaN, in 14 of 17 tensors) from its healthy predecessor: a single-file
// layout written by another tool.
func TestRepairRealDivergedModel(t *testing.T) {
	dir := filepath.Join(realdata(t), "JunSuzukiJapan__tl")
	bad, good := filepath.Join(dir, "@b77a867ed0", "model_2digit.safetensors"), filepath.Join(dir, "@962514214a", "model_2digit.safetensors")
	before := treeSums(t, bad, good)
	out := filepath.Join(t.TempDir(), "model_2digit.safetensors")
	rep, err := Run(context.Background(), Options{Bad: bad, Good: good, Out: out, Version: "test-version"})
	if err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, before, bad, good)
	if rep.Plan.Replaced != 14 || rep.Plan.Kept != 3 {
		t.Errorf("replaced %d, kept %d; the file has 14 NaN tensors of 17", rep.Plan.Replaced, rep.Plan.Kept)
	}
	scanHealthy(t, out)
	fromGood := map[string]bool{}
	for _, tp := range rep.Plan.Tensors {
		if tp.From == FromGood {
			fromGood[tp.Name] = true
		}
	}
	checkIndependentReader(t, out, tensorBytes(t, bad), tensorBytes(t, good), fromGood)
	checkProvenance(t, out, bad, good, rep, fromGood)
}

// TestRepairGeneratedRun repairs the first NaN checkpoint of a generated
// training run from its last healthy one, and a copy of a healthy checkpoint
// of the same run in which a few tensors were damaged by hand.
func TestRepairGeneratedRun(t *testing.T) {
	run := t.TempDir()
	o := synth.RunOptions{Shards: 2, Seed: 3}
	if _, err := synth.WriteRun(run, o); err != nil {
		t.Fatal(err)
	}
	truth, err := o.Truth()
	if err != nil {
		t.Fatal(err)
	}
	ck := func(step int) string { return filepath.Join(run, fmt.Sprintf("checkpoint-%d", step)) }
	bad, good := ck(truth.FirstUnhealthy), ck(truth.LastHealthy)
	before := treeSums(t, run)
	out := filepath.Join(t.TempDir(), "repaired")
	rep, err := Run(context.Background(), Options{Bad: bad, Good: good, Out: out, Version: "test-version"})
	if err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, before, run)
	r := scanHealthy(t, out)
	if r.Summary.NonFiniteTensors != 0 {
		t.Errorf("repaired run checkpoint has %d non-finite tensors", r.Summary.NonFiniteTensors)
	}
	fromGood := map[string]bool{}
	for _, tp := range rep.Plan.Tensors {
		if tp.From == FromGood {
			fromGood[tp.Name] = true
		}
	}
	if len(fromGood) == 0 {
		t.Fatal("nothing was replaced in the NaN checkpoint")
	}
	checkIndependentReader(t, out, tensorBytes(t, bad), tensorBytes(t, good), fromGood)
	checkProvenance(t, out, bad, good, rep, fromGood)
	bs, err := inspect.ScanPath(context.Background(), bad, inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(fromGood); got != bs.Summary.NonFiniteTensors {
		t.Errorf("%d tensors replaced, BAD has %d non-finite ones", got, bs.Summary.NonFiniteTensors)
	}
}
