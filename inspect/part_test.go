package inspect

import (
	"context"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// TestPartsAssembleToScan: the tensors of N parts, each scanned with a worker
// count of its own (the chunk size, which fixes the order accumulators are
// merged in, is the default everywhere), assemble into the Result of one Scan:
// the same statistics to the bit, the same findings (outliers across a role
// included) and summary.
func TestPartsAssembleToScan(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := synth.WriteCheckpoint(dir, synth.Options{Arch: testArch, Seed: 5, Shards: 3}); err != nil {
		t.Fatal(err)
	}
	if err := synth.ScaleTensor(dir, "model.layers.3.mlp.down_proj.weight", 50); err != nil {
		t.Fatal(err)
	}
	if err := synth.SetValues(dir, "model.layers.5.self_attn.q_proj.weight", map[int]float64{7: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	c, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Scan(context.Background(), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want.Summary.Errors < 1 || want.Summary.Warnings < 1 {
		t.Fatalf("the damage was not found: %+v", want.Findings)
	}
	for _, n := range []int{1, 2, 3, 7} {
		assign := Partition(c, n)
		stats := make([]*TensorStats, len(c.Tensors))
		var failures []ReadFailure
		for k := range n {
			pr, err := ScanTensors(context.Background(), c, Options{Workers: k%2 + 1}, func(i int) bool { return assign[i] == k })
			if err != nil {
				t.Fatal(err)
			}
			for i, ts := range pr.Tensors {
				if (ts != nil) != (assign[i] == k) {
					t.Fatalf("N=%d part %d: tensor %d returned %v, assigned to part %d", n, k, i, ts != nil, assign[i])
				}
				if ts != nil {
					stats[i] = PartStats(c.Tensors[i], ts.Acc, ts.Skipped)
				}
			}
			failures = append(failures, pr.Failures...)
		}
		got, err := Assemble(c, stats, failures, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range got.Tensors {
			if !reflect.DeepEqual(got.Tensors[i], want.Tensors[i]) {
				t.Fatalf("N=%d: tensor %s:\n got %+v\nwant %+v", n, c.Tensors[i].Name, got.Tensors[i], want.Tensors[i])
			}
		}
		if !reflect.DeepEqual(got.Findings, want.Findings) || got.Summary != want.Summary {
			t.Fatalf("N=%d: findings or summary differ:\n got %+v %+v\nwant %+v %+v", n, got.Findings, got.Summary, want.Findings, want.Summary)
		}
	}
}

// TestAssembleCountsFailuresOnce: a file that failed in two parts is one
// finding naming the first part's error, with the tensors both left counted.
func TestAssembleCountsFailuresOnce(t *testing.T) {
	got := failureFindings([]ReadFailure{
		{File: "a.safetensors", Tensor: "x", Err: "short read", Skipped: 2},
		{File: "b.safetensors", Err: "permission denied", Skipped: 4},
		{File: "a.safetensors", Tensor: "y", Err: "EIO", Skipped: 3},
	})
	if len(got) != 2 || got[0].File != "a.safetensors" || got[1].File != "b.safetensors" {
		t.Fatalf("want one finding per file: %+v", got)
	}
	if !strings.Contains(got[0].Message, `at tensor "x": short read; 5 tensor(s)`) || got[0].Tensor != "x" {
		t.Errorf("merged failure: %+v", got[0])
	}
	if !strings.Contains(got[1].Message, "reading b.safetensors failed: permission denied; 4 tensor(s)") {
		t.Errorf("failure without a tensor: %+v", got[1])
	}
	if _, err := Assemble(&formats.Checkpoint{Tensors: []*formats.Tensor{{}}}, []*TensorStats{nil}, nil, Options{}); err == nil {
		t.Error("Assemble accepted a tensor without statistics")
	}
}
