package synth

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ckpt-tool/ckpt/formats"
)

// RunOptions describe an HF-Trainer-style run that trains fine, takes a
// learning-rate jump, drifts (weight norms grow, updates far larger than
// before) and finally diverges to NaN. Zero fields take the defaults in brackets.
type RunOptions struct {
	Arch          Arch          // [Tiny]
	DType         formats.DType // [BF16]
	Seed          int64
	Shards        int // as in Options
	Checkpoints   int // number of checkpoint-N dirs [14]
	SaveSteps     int // steps between checkpoints [100]
	LoggingSteps  int // steps between log_history entries [10]
	StepsPerEpoch int // [500]

	LR       float64 // learning rate before the jump [3e-5]
	JumpLR   float64 // learning rate after it [3e-4]
	JumpStep int     // steps after this one use JumpLR [650]
	NaNStep  int     // first step whose loss and gradients are non-finite; checkpoints at or after it are NaN everywhere; -1: never [1150]

	// NaNTensors, when set, confines the damage: checkpoints at or after
	// NaNStep are NaN in these tensors only, the others keep their drifted
	// values. Every name must be a tensor of Arch.
	NaNTensors []string

	BaseUpdate float64 // relative update between checkpoints before the jump [1e-3]
	JumpUpdate float64 // relative update per checkpoint interval after it [1e-1]
	Growth     float64 // weight-norm growth per checkpoint interval after the jump [0.15]

	// NaNFilter mimics transformers' logging_nan_inf_filter: a non-finite loss
	// is not logged (the previous average stands in), so only grad_norm shows
	// the divergence.
	NaNFilter bool

	Overwrite bool // replace existing weight files in the checkpoint dirs
}

// RunTruth is the ground truth of a generated run, for tests to assert against.
type RunTruth struct {
	Steps []int    // the step of each checkpoint, ascending
	Dirs  []string // "checkpoint-<step>", in the same order

	JumpStep int // steps after it use the jumped learning rate
	NaNStep  int // first non-finite step (-1: none)

	// LastHealthy is the step of the last checkpoint whose values are all
	// finite, 0 if none; FirstUnhealthy is the first NaN checkpoint, 0 if none.
	LastHealthy, FirstUnhealthy int

	// DriftFrom, DriftTo are consecutive checkpoint steps bracketing JumpStep:
	// the first interval whose update is far larger than the ones before.
	DriftFrom, DriftTo int

	// RelUpdate[k] is the designed ||W_k − W_{k−1}|| / ||W_{k−1}|| of every
	// tensor between checkpoints k−1 and k before dtype rounding (0 for k = 0
	// and for NaN checkpoints). With BF16 the measured value is of the same
	// order (rounding adds noise to tiny updates).
	RelUpdate []float64
	// Gain[k] is the factor by which checkpoint k's weights have grown.
	Gain []float64

	// First logged steps whose loss (0 with NaNFilter or without divergence)
	// and whose grad_norm is non-finite (0 without divergence).
	FirstNonFiniteLossStep, FirstNonFiniteGradNormStep int
}

func (o *RunOptions) fill() error {
	if o.Arch.Name == "" && o.Arch.Hidden == 0 {
		o.Arch = Tiny
	}
	if o.DType == "" {
		o.DType = formats.BF16
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	deff := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.Checkpoints, 14)
	def(&o.SaveSteps, 100)
	def(&o.LoggingSteps, 10)
	def(&o.StepsPerEpoch, 500)
	def(&o.JumpStep, 650)
	def(&o.NaNStep, 1150)
	deff(&o.LR, 3e-5)
	deff(&o.JumpLR, 3e-4)
	deff(&o.BaseUpdate, 1e-3)
	deff(&o.JumpUpdate, 1e-1)
	deff(&o.Growth, 0.15)
	if o.Checkpoints < 2 || o.SaveSteps < 1 || o.LoggingSteps < 1 || o.StepsPerEpoch < 1 {
		return fmt.Errorf("run needs at least 2 checkpoints and positive save, logging and epoch steps")
	}
	if o.JumpStep < o.SaveSteps || o.JumpStep >= o.Checkpoints*o.SaveSteps {
		return fmt.Errorf("jump step %d must fall between the first checkpoint (%d) and the last (%d)", o.JumpStep, o.SaveSteps, o.Checkpoints*o.SaveSteps)
	}
	if o.NaNStep != -1 && o.NaNStep <= o.JumpStep {
		return fmt.Errorf("NaN step %d must come after the jump step %d (or be -1 for none)", o.NaNStep, o.JumpStep)
	}
	names := map[string]bool{}
	for _, s := range o.Arch.Specs(o.DType) {
		names[s.Name] = true
	}
	for _, n := range o.NaNTensors {
		if !names[n] {
			return fmt.Errorf("NaN tensor %q is not a tensor of %s", n, o.Arch.Name)
		}
	}
	return (&Options{Arch: o.Arch, DType: o.DType, Shards: o.Shards}).fill()
}

// Truth is the ground truth of the run these options describe (defaults filled).
func (o RunOptions) Truth() (RunTruth, error) {
	if err := o.fill(); err != nil {
		return RunTruth{}, err
	}
	t := RunTruth{JumpStep: o.JumpStep, NaNStep: o.NaNStep}
	gain, acc := 1.0, 1.0 // acc: mean square of (base + noise) relative to the tensor's scale
	for k := 0; k < o.Checkpoints; k++ {
		s := (k + 1) * o.SaveSteps
		t.Steps = append(t.Steps, s)
		t.Dirs = append(t.Dirs, "checkpoint-"+strconv.Itoa(s))
		rel := 0.0
		if k > 0 {
			sg, g := o.sigma(s), 0.0
			if s > o.JumpStep {
				g = o.Growth
			}
			// W_k − W_{k−1} = gain_{k−1}·(g·A + (1+g)·σ·ref·N), relative to gain_{k−1}·||A||.
			rel = math.Sqrt(g*g + (1+g)*(1+g)*sg*sg/acc)
			gain *= 1 + g
			acc += sg * sg
		}
		nanHere := o.NaNStep != -1 && s >= o.NaNStep
		if nanHere {
			rel = 0
			if t.FirstUnhealthy == 0 {
				t.FirstUnhealthy = s
			}
		} else {
			t.LastHealthy = s
		}
		t.RelUpdate = append(t.RelUpdate, rel)
		t.Gain = append(t.Gain, gain)
		if k > 0 && t.DriftTo == 0 && s > o.JumpStep {
			t.DriftFrom, t.DriftTo = t.Steps[k-1], s
		}
	}
	if o.NaNStep != -1 {
		first := (o.NaNStep + o.LoggingSteps - 1) / o.LoggingSteps * o.LoggingSteps
		if first <= o.Checkpoints*o.SaveSteps {
			t.FirstNonFiniteGradNormStep = first
			if !o.NaNFilter {
				t.FirstNonFiniteLossStep = first
			}
		}
	}
	return t, nil
}

// sigma is the update scale of the checkpoint interval ending at step s.
func (o RunOptions) sigma(s int) float64 {
	if s > o.JumpStep {
		return o.JumpUpdate
	}
	return o.BaseUpdate
}

// variants builds the value recipe of every checkpoint: the update scale of
// interval k is sigma_k (relative to each tensor's scale), the gain grows after
// the jump.
func (o RunOptions) variants(runDir string, t RunTruth) []variant {
	sigmas := make([]float64, 0, o.Checkpoints)
	var vs []variant
	for k, s := range t.Steps {
		if k > 0 {
			sigmas = append(sigmas, o.sigma(s))
		}
		v := variant{
			dir:    filepath.Join(runDir, t.Dirs[k]),
			gain:   t.Gain[k],
			sigmas: sigmas[:len(sigmas):len(sigmas)],
			nan:    o.NaNStep != -1 && s >= o.NaNStep,
		}
		if v.nan && len(o.NaNTensors) > 0 {
			v.nanOnly = map[string]bool{}
			for _, n := range o.NaNTensors {
				v.nanOnly[n] = true
			}
		}
		vs = append(vs, v)
	}
	return vs
}

// WriteRun writes a run directory of checkpoint-N/ dirs (config.json, weights,
// trainer_state.json last, as the Trainer saves them) and returns the
// checkpoint steps; RunOptions.Truth gives the rest of the ground truth. All
// checkpoints are written in one pass over the tensors: each element costs one
// draw per checkpoint.
func WriteRun(runDir string, o RunOptions) ([]int, error) {
	t, err := o.Truth()
	if err != nil {
		return nil, err
	}
	_ = o.fill()
	vs := o.variants(runDir, t)
	for _, v := range vs {
		if err := os.MkdirAll(v.dir, 0o755); err != nil {
			return nil, err
		}
		if err := writeFile(filepath.Join(v.dir, "config.json"), o.Arch.ConfigJSON(o.DType)); err != nil {
			return nil, err
		}
	}
	l := planLayout(o.Arch.Specs(o.DType), o.Shards)
	if err := writeVariants(Options{Arch: o.Arch, DType: o.DType, Seed: o.Seed}, l, vs, o.Overwrite); err != nil {
		return nil, err
	}
	log := o.logHistory(t)
	for k, v := range vs {
		if len(l.files) > 1 {
			if err := writeIndexFor(v.dir, l); err != nil {
				return nil, err
			}
		}
		step := t.Steps[k]
		n := 0
		for n < len(log) && log[n].step <= step {
			n++
		}
		if err := writeFile(filepath.Join(v.dir, "trainer_state.json"), o.trainerState(step, log[:n])); err != nil {
			return nil, err
		}
	}
	return t.Steps, nil
}
