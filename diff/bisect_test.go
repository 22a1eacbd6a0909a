package diff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

func ceilLog2(n int) int { return bits.Len(uint(n - 1)) }

func TestSearchFirstBadExhaustive(t *testing.T) {
	for n := 1; n <= 70; n++ {
		for bad := 0; bad <= n; bad++ { // items [bad, n) are unhealthy
			probed := map[int]bool{}
			calls := 0
			lo, hi, err := SearchFirstBad(n, func(i int) (bool, error) {
				if i < 0 || i >= n || probed[i] {
					t.Fatalf("n=%d bad=%d: probe %d (again?)", n, bad, i)
				}
				probed[i] = true
				calls++
				return i < bad, nil
			})
			if err != nil || lo != bad-1 || hi != bad {
				t.Fatalf("n=%d bad=%d: lo %d hi %d err %v", n, bad, lo, hi, err)
			}
			if calls > ceilLog2(n)+1 {
				t.Errorf("n=%d bad=%d: %d probes > ⌈log2 n⌉+1 = %d", n, bad, calls, ceilLog2(n)+1)
			}
			if (lo >= 0 && !probed[lo]) || (hi < n && !probed[hi]) {
				t.Errorf("n=%d bad=%d: reported %d/%d without probing both", n, bad, lo, hi)
			}
		}
	}
	if lo, hi, _ := SearchFirstBad(0, nil); lo != -1 || hi != 0 {
		t.Errorf("empty series: %d %d", lo, hi)
	}
	boom := errors.New("boom")
	if _, _, err := SearchFirstBad(5, func(int) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("error not passed on: %v", err)
	}
}

func TestScanBudget(t *testing.T) {
	for n, want := range map[int]int{1: 2, 2: 3, 3: 4, 4: 4, 5: 5, 12: 6, 14: 6, 16: 6, 17: 7} {
		if got := ScanBudget(n); got != want {
			t.Errorf("ScanBudget(%d) = %d, want %d", n, got, want)
		}
	}
}

func stepOf(r *Ref) int {
	if r == nil {
		return 0
	}
	return r.Step
}

// bisectRun writes a generated run and bisects it.
func bisectRun(t *testing.T, o synth.RunOptions, bo BisectOptions) (*Report, synth.RunTruth, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := synth.WriteRun(dir, o); err != nil {
		t.Fatal(err)
	}
	truth, err := o.Truth()
	if err != nil {
		t.Fatal(err)
	}
	es, err := Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	bo.RunDir = dir
	rep, err := Bisect(context.Background(), es, bo)
	if err != nil {
		t.Fatal(err)
	}
	return rep, truth, dir
}

func TestBisectGeneratedRuns(t *testing.T) {
	cases := []struct {
		name string
		o    synth.RunOptions
	}{
		{"default 14", synth.RunOptions{Seed: 1}},
		{"12 checkpoints, sharded", synth.RunOptions{Seed: 2, Checkpoints: 12, Shards: 3, JumpStep: 450, NaNStep: 1010}},
		{"NaN only in the newest", synth.RunOptions{Seed: 3, Checkpoints: 13, JumpStep: 550, NaNStep: 1250}},
		{"NaN filtered from the loss", synth.RunOptions{Seed: 4, NaNFilter: true, JumpStep: 350, NaNStep: 900}},
		{"20 checkpoints, F16", synth.RunOptions{Seed: 5, Checkpoints: 20, DType: formats.F16, JumpStep: 1250, NaNStep: 1720}},
		{"never NaN", synth.RunOptions{Seed: 6, NaNStep: -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, truth, dir := bisectRun(t, c.o, BisectOptions{})
			n := len(truth.Steps)
			if got := stepOf(rep.FirstUnhealthy); got != truth.FirstUnhealthy {
				t.Errorf("first unhealthy %d, want %d", got, truth.FirstUnhealthy)
			}
			if got := stepOf(rep.LastHealthy); got != truth.LastHealthy {
				t.Errorf("last healthy %d, want %d", got, truth.LastHealthy)
			}
			if rep.VerdictScans > ceilLog2(n)+1 || len(rep.Scanned) > ceilLog2(n)+2 || rep.ScanBudget != ceilLog2(n)+2 {
				t.Errorf("%d verdict scans, %d in all, budget %d, for %d checkpoints", rep.VerdictScans, len(rep.Scanned), rep.ScanBudget, n)
			}
			for _, r := range []*Ref{rep.FirstUnhealthy, rep.LastHealthy} {
				if r != nil && !scanned(rep, r.Path) {
					t.Errorf("%s reported without being scanned", r.Path)
				}
			}
			for _, cv := range rep.Checkpoints {
				want := NotScanned
				if scanned(rep, cv.Path) {
					want = Healthy
					if truth.FirstUnhealthy != 0 && cv.Step >= truth.FirstUnhealthy {
						want = Unhealthy
					}
				}
				if cv.Verdict != want {
					t.Errorf("%s: verdict %s, want %s", cv.Path, cv.Verdict, want)
				}
			}
			if o := rep.DriftOnset; o == nil || o.FromStep != truth.DriftFrom || o.ToStep != truth.DriftTo {
				t.Errorf("drift onset %+v, want %d → %d", o, truth.DriftFrom, truth.DriftTo)
			}
			// Drift: every interval up to the first unhealthy checkpoint, measured
			// close to the designed update (bf16 rounding adds noise to tiny ones).
			wantIntervals := n - 1
			if truth.FirstUnhealthy != 0 {
				for k, s := range truth.Steps {
					if s == truth.FirstUnhealthy {
						wantIntervals = k
					}
				}
			}
			if len(rep.Drift) != wantIntervals {
				t.Errorf("%d drift intervals, want %d", len(rep.Drift), wantIntervals)
			}
			for k, iv := range rep.Drift {
				designed := truth.RelUpdate[k+1]
				if designed == 0 { // into the NaN checkpoint
					if iv.RelUpdate != nil || iv.Appeared == 0 {
						t.Errorf("interval into NaN: rel %v appeared %d", iv.RelUpdate, iv.Appeared)
					}
					continue
				}
				if iv.RelUpdate == nil || *iv.RelUpdate < designed/3 || *iv.RelUpdate > designed*3 {
					t.Errorf("interval %d→%d: rel %v, designed %v", iv.FromStep, iv.ToStep, iv.RelUpdate, designed)
				}
				if len(iv.TopTensors) != 5 || len(iv.TopLayers) == 0 {
					t.Errorf("interval %d→%d names %d tensors and %d layers", iv.FromStep, iv.ToStep, len(iv.TopTensors), len(iv.TopLayers))
				}
			}
			// The training log.
			tl := rep.TrainingLog
			jumps := tl.Kinds()[EventLRJump]
			lstep := 10
			if len(jumps) != 1 || jumps[0].Step <= truth.JumpStep || jumps[0].Step > truth.JumpStep+lstep {
				t.Errorf("lr jumps %+v, want one just after step %d", jumps, truth.JumpStep)
			} else if *jumps[0].CheckpointBefore != truth.DriftFrom || *jumps[0].CheckpointAfter != truth.DriftTo {
				t.Errorf("lr jump placed between %d and %d", *jumps[0].CheckpointBefore, *jumps[0].CheckpointAfter)
			}
			if got := optStep(tl.FirstNonFiniteLossStep); got != truth.FirstNonFiniteLossStep {
				t.Errorf("first non-finite loss step %d, want %d", got, truth.FirstNonFiniteLossStep)
			}
			if got := optStep(tl.FirstNonFiniteGradNormStep); got != truth.FirstNonFiniteGradNormStep {
				t.Errorf("first non-finite grad_norm step %d, want %d", got, truth.FirstNonFiniteGradNormStep)
			}
			// The recommendation: the last checkpoint before the onset.
			if r := rep.Recommendation.RollbackTo; r == nil || r.Step != truth.DriftFrom {
				t.Errorf("rollback to %+v, want checkpoint-%d", r, truth.DriftFrom)
			}
			if !hasAdvice(rep, AdviceLRTooHigh) || !hasAdvice(rep, AdviceClipping) {
				t.Errorf("advice %+v", rep.Recommendation.Advice)
			}
			wantFP16 := c.o.DType == formats.F16 && truth.FirstUnhealthy != 0
			if hasAdvice(rep, AdviceFP16Scaling) != wantFP16 {
				t.Errorf("fp16 advice present: %v, want %v", hasAdvice(rep, AdviceFP16Scaling), wantFP16)
			}
			if truth.FirstUnhealthy != 0 && len(rep.Culprits) == 0 {
				t.Errorf("no culprits")
			}
			if wantFP16 {
				// With a loss scaler's state saved beside the weights, fp16 was scaled.
				for _, d := range truth.Dirs {
					if err := os.WriteFile(filepath.Join(dir, d, "scaler.pt"), []byte("scaler"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				es, _ := Discover(dir)
				again, err := Bisect(context.Background(), es, BisectOptions{NoDrift: true})
				if err != nil {
					t.Fatal(err)
				}
				if hasAdvice(again, AdviceFP16Scaling) {
					t.Errorf("fp16 advice although every checkpoint holds scaler.pt")
				}
			}
		})
	}
}

func optStep(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func scanned(rep *Report, path string) bool {
	for _, s := range rep.Scanned {
		if s.Path == path {
			return true
		}
	}
	return false
}

func hasAdvice(rep *Report, kind string) bool {
	for _, a := range rep.Recommendation.Advice {
		if a.Kind == kind {
			return true
		}
	}
	return false
}

func TestBisectFastLimitsDriftToScanned(t *testing.T) {
	rep, _, _ := bisectRun(t, synth.RunOptions{Seed: 7}, BisectOptions{Fast: true})
	if len(rep.Drift) == 0 {
		t.Fatal("no drift intervals")
	}
	for _, iv := range rep.Drift {
		if !scanned(rep, iv.FromPath) || !scanned(rep, iv.ToPath) {
			t.Errorf("interval %d→%d between checkpoints the search did not visit", iv.FromStep, iv.ToStep)
		}
		if iv.ToStep > rep.FirstUnhealthy.Step {
			t.Errorf("interval %d→%d beyond the first unhealthy checkpoint", iv.FromStep, iv.ToStep)
		}
	}
}

func TestBisectSkipsIncompleteCheckpoints(t *testing.T) {
	dir := t.TempDir()
	o := synth.RunOptions{Seed: 8}
	steps, err := synth.WriteRun(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	truth, _ := o.Truth()
	// An interrupted save of the newest (no trainer_state.json), one without
	// weights, and a DeepSpeed directory without safetensors.
	newest := filepath.Join(dir, "checkpoint-1400")
	noWeights := filepath.Join(dir, "checkpoint-300")
	if err := os.Remove(filepath.Join(newest, "trainer_state.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(noWeights, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "global_step1500"), 0o755); err != nil {
		t.Fatal(err)
	}
	es, err := Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(steps)+1 {
		t.Fatalf("%d entries", len(es))
	}
	rep, err := Bisect(context.Background(), es, BisectOptions{NoDrift: true})
	if err != nil {
		t.Fatal(err)
	}
	skipped := map[int]string{}
	for _, cv := range rep.Checkpoints {
		if cv.Incomplete != "" {
			skipped[cv.Step] = cv.Incomplete
			if cv.Verdict != NotScanned || scanned(rep, cv.Path) {
				t.Errorf("incomplete %s was scanned", cv.Path)
			}
		}
	}
	if len(skipped) != 3 || skipped[1400] == "" || skipped[300] == "" || skipped[1500] == "" {
		t.Errorf("skipped %v", skipped)
	}
	if stepOf(rep.FirstUnhealthy) != truth.FirstUnhealthy || stepOf(rep.LastHealthy) != truth.LastHealthy {
		t.Errorf("verdict %v %v", rep.LastHealthy, rep.FirstUnhealthy)
	}
	// The newest trainer_state.json of a complete checkpoint is read.
	if filepath.Base(filepath.Dir(rep.TrainingLog.Path)) != "checkpoint-1300" {
		t.Errorf("training log from %s", rep.TrainingLog.Path)
	}
}

func TestDiscoverOrdersByStepNumber(t *testing.T) {
	dir := t.TempDir()
	vals := []float64{1, 2, 3, 4}
	for _, n := range []string{"global_step1000", "global_step200", "global_step30", "checkpoint-200", "not-a-checkpoint", "checkpoint-x"} {
		writeST(t, filepath.Join(dir, n, "model.safetensors"), f(formats.F32, "w", []uint64{4}, vals))
	}
	if err := os.WriteFile(filepath.Join(dir, "checkpoint-5"), []byte("a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	es, err := Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	want := []string{"global_step30", "checkpoint-200", "global_step1000"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if _, err := Discover(filepath.Join(dir, "not-a-checkpoint")); !errors.Is(err, ErrNoSeries) {
		t.Errorf("a checkpoint dir as run dir: %v", err)
	}
}

func TestBisectRealdataEpochSeries(t *testing.T) {
	rd := moduleRealdata(t)
	ml := filepath.Join(rd, "kako-jun__diffai/@adffa46380/to-migrate/deprecated/tests-old/fixtures/ml_models")
	var paths []string
	for _, n := range []string{"checkpoint_epoch_50", "checkpoint_epoch_0", "checkpoint_epoch_10"} {
		paths = append(paths, filepath.Join(ml, n+".safetensors"))
	}
	es, err := FromPaths(paths)
	if err != nil {
		t.Fatal(err)
	}
	if es[0].Step != 0 || es[1].Step != 10 || es[2].Step != 50 {
		t.Fatalf("steps %d %d %d", es[0].Step, es[1].Step, es[2].Step)
	}
	rep, err := Bisect(context.Background(), es, BisectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FirstUnhealthy != nil || stepOf(rep.LastHealthy) != 50 || len(rep.Scanned) != 1 {
		t.Errorf("healthy series: first unhealthy %v, last healthy %v, %d scans", rep.FirstUnhealthy, rep.LastHealthy, len(rep.Scanned))
	}
	if len(rep.Drift) != 2 || rep.DriftOnset != nil || rep.Recommendation.RollbackTo != nil {
		t.Errorf("drift %d intervals, onset %v, rollback %v", len(rep.Drift), rep.DriftOnset, rep.Recommendation.RollbackTo)
	}
	// fc1 moves most between epochs 10 and 50 (rel ≈ 0.55 against ≤ 0.39 for fc2, fc3).
	if top := rep.Drift[1].TopTensors[0].Name; top != "fc1.bias" && top != "fc1.weight" {
		t.Errorf("top tensor %s", top)
	}
}

func TestBisectRealdataDivergedPair(t *testing.T) {
	rd := moduleRealdata(t)
	tl := filepath.Join(rd, "JunSuzukiJapan__tl")
	es, err := FromPaths([]string{filepath.Join(tl, "@962514214a/model_2digit.safetensors"), filepath.Join(tl, "@b77a867ed0/model_2digit.safetensors")})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Bisect(context.Background(), es, BisectOptions{Until: UntilNonFinite})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FirstUnhealthy == nil || filepath.Base(filepath.Dir(rep.FirstUnhealthy.Path)) != "@b77a867ed0" ||
		rep.LastHealthy == nil || filepath.Base(filepath.Dir(rep.LastHealthy.Path)) != "@962514214a" {
		t.Fatalf("verdict %+v %+v", rep.LastHealthy, rep.FirstUnhealthy)
	}
	if len(rep.Culprits) != 14 {
		t.Errorf("%d culprits, want the 14 NaN tensors", len(rep.Culprits))
	}
	if len(rep.Drift) != 1 || rep.Drift[0].Appeared != 59725 {
		t.Errorf("drift %+v", rep.Drift)
	}
}

func TestDriftOnsetRule(t *testing.T) {
	iv := func(rels ...float64) []Interval {
		var out []Interval
		for i, r := range rels {
			x := r
			it := Interval{FromStep: i * 10, ToStep: (i + 1) * 10, RelUpdate: &x}
			if math.IsNaN(r) {
				it.RelUpdate = nil
				it.Appeared = 7
			}
			out = append(out, it)
		}
		return out
	}
	cases := []struct {
		name string
		rels []float64
		from int // -1: no onset
	}{
		{"noise then jump", []float64{1e-3, 1.3e-3, 0.8e-3, 1.1e-3, 9e-2, 1e-1}, 40},
		{"one noisy interval is not an onset", []float64{1e-3, 1e-3, 4e-3, 1e-3, 1.2e-3}, -1},
		{"warmup ramp", []float64{0.05, 0.15, 0.25, 0.35, 0.4, 0.4}, -1},
		{"jump too early to judge", []float64{1e-3, 1e-1, 1e-1, 1e-1}, -1},
		{"jump right after the minimum history", []float64{1e-3, 1e-3, 1e-2}, 20},
		{"NaN intervals are left out", []float64{1e-3, math.NaN(), 1e-3, math.NaN(), 1e-2}, 40},
		{"healthy run", []float64{1e-3, 1e-3, 1e-3, 1e-3}, -1},
		{"identical checkpoints, then training", []float64{0, 0, 1e-3}, 20},
	}
	for _, c := range cases {
		o := DriftOnset(iv(c.rels...), DefaultOnsetFactor)
		switch {
		case c.from < 0 && o != nil:
			t.Errorf("%s: onset %+v, want none", c.name, o)
		case c.from >= 0 && (o == nil || o.FromStep != c.from):
			t.Errorf("%s: onset %+v, want from %d", c.name, o, c.from)
		}
		if _, err := json.Marshal(o); err != nil {
			t.Errorf("%s: onset does not encode: %v", c.name, err)
		}
		// OnsetBaseline (what ckpt watch reports as it goes) is the baseline
		// the rule used for the onset interval.
		if o != nil {
			ivs := iv(c.rels...)
			k := o.FromStep / 10
			if base, ok := OnsetBaseline(ivs[:k]); !ok || base != o.Baseline {
				t.Errorf("%s: OnsetBaseline of the %d intervals before the onset = %v, %v; the rule used %v", c.name, k, base, ok, o.Baseline)
			}
		}
		if _, ok := OnsetBaseline(iv(c.rels...)[:1]); ok {
			t.Errorf("%s: a baseline from one interval", c.name)
		}
	}
}

// --until decides what counts: a truncated newest checkpoint is unhealthy for
// "any" (a format error) but not for "nonfinite"; a malformed training log is
// a note, not a failure.
func TestBisectUntilAndBadLog(t *testing.T) {
	dir := t.TempDir()
	vals := make([]float64, 256)
	for i := range vals {
		vals[i] = float64(i%7) - 3
	}
	var paths []string
	for k := 1; k <= 3; k++ {
		for i := range vals {
			vals[i] *= 1.01
		}
		p := filepath.Join(dir, fmt.Sprintf("checkpoint-%d", k*10))
		writeST(t, filepath.Join(p, "model.safetensors"), f(formats.F32, "model.layers.0.w", []uint64{256}, vals), f(formats.F32, "model.layers.1.w", []uint64{256}, vals))
		if err := os.WriteFile(filepath.Join(p, "trainer_state.json"), []byte(`{"global_step": `+fmt.Sprint(k*10)+`, "log_history": [`), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	newest := filepath.Join(paths[2], "model.safetensors")
	st, _ := os.Stat(newest)
	if err := os.Truncate(newest, st.Size()-100); err != nil {
		t.Fatal(err)
	}
	es, err := Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Bisect(context.Background(), es, BisectOptions{Until: UntilAny})
	if err != nil {
		t.Fatal(err)
	}
	if stepOf(rep.FirstUnhealthy) != 30 || stepOf(rep.LastHealthy) != 20 || len(rep.Culprits) == 0 || rep.Culprits[0].Check != "format" {
		t.Errorf("any: %v %v %+v", rep.FirstUnhealthy, rep.LastHealthy, rep.Culprits)
	}
	found := false
	for _, n := range rep.Notes {
		found = found || strings.Contains(n, "training log not read")
	}
	if !found || rep.TrainingLog == nil || len(rep.TrainingLog.Events) != 0 {
		t.Errorf("notes %q, log %+v", rep.Notes, rep.TrainingLog)
	}
	rep, err = Bisect(context.Background(), es, BisectOptions{Until: UntilNonFinite})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FirstUnhealthy != nil || stepOf(rep.LastHealthy) != 30 {
		t.Errorf("nonfinite: %v %v", rep.FirstUnhealthy, rep.LastHealthy)
	}
	if _, err := ParseUntil("sometimes"); err == nil {
		t.Errorf("ParseUntil accepted nonsense")
	}
}
