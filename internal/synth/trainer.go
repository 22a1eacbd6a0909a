package synth

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// logEntry is one training entry of trainer_state.json's log_history.
type logEntry struct {
	step                      int
	epoch, gradNorm, lr, loss float64
}

// logHistory is the whole run's training log: loss falling and grad_norm near 1
// while healthy; after the jump grad_norm grows exponentially and the loss
// rises; from NaNStep on grad_norm is Infinity once, then NaN, and the loss NaN
// (unless NaNFilter hides it).
func (o RunOptions) logHistory(t RunTruth) []logEntry {
	r := rng{streamSeed(o.Seed, "log_history", 0, 0)}
	last := o.Checkpoints * o.SaveSteps
	var out []logEntry
	lastLoss := 0.0
	for s := o.LoggingSteps; s <= last; s += o.LoggingSteps {
		e := logEntry{step: s, epoch: float64(s) / float64(o.StepsPerEpoch), lr: o.LR}
		healthy := 2.5*math.Exp(-float64(s)/300) + 1.0
		e.loss = healthy + 0.03*(r.uniform()-0.5)
		e.gradNorm = 0.8 + 0.4*r.uniform()
		if s > o.JumpStep {
			e.lr = o.JumpLR
			span := float64(last - o.JumpStep)
			if o.NaNStep != -1 {
				span = float64(o.NaNStep - o.JumpStep)
			}
			x := float64(s-o.JumpStep) / span // 0 → 1 over the drift
			e.gradNorm *= math.Exp(7 * x)     // up to ~1e3 before divergence
			e.loss = healthy + 2*x*x + 0.05*r.uniform()
		}
		if o.NaNStep != -1 && s >= o.NaNStep {
			e.gradNorm = math.NaN()
			if s == t.FirstNonFiniteGradNormStep {
				e.gradNorm = math.Inf(1)
			}
			e.loss = math.NaN()
			if o.NaNFilter {
				e.loss = lastLoss
			}
		}
		e.gradNorm = float64(float32(e.gradNorm)) // torch computes it in float32
		e.loss = math.Round(e.loss*1e4) / 1e4
		lastLoss = e.loss
		out = append(out, e)
	}
	return out
}

// PyFloat formats a float as Python's json module does: repr digits, bare NaN,
// Infinity and -Infinity tokens.
func PyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsRune(s, '.') {
		s += ".0"
	}
	return s
}

// trainerState renders trainer_state.json for a checkpoint at step, keys sorted
// and indented as transformers writes it.
func (o RunOptions) trainerState(step int, log []logEntry) []byte {
	var b bytes.Buffer
	maxSteps := o.Checkpoints * o.SaveSteps
	epochs := (maxSteps + o.StepsPerEpoch - 1) / o.StepsPerEpoch
	fmt.Fprintf(&b, "{\n")
	fmt.Fprintf(&b, "  \"best_metric\": null,\n  \"best_model_checkpoint\": null,\n")
	fmt.Fprintf(&b, "  \"epoch\": %s,\n", PyFloat(float64(step)/float64(o.StepsPerEpoch)))
	fmt.Fprintf(&b, "  \"eval_steps\": 500,\n  \"global_step\": %d,\n", step)
	fmt.Fprintf(&b, "  \"is_hyper_param_search\": false,\n  \"is_local_process_zero\": true,\n  \"is_world_process_zero\": true,\n")
	if len(log) == 0 {
		fmt.Fprintf(&b, "  \"log_history\": [],\n")
	} else {
		fmt.Fprintf(&b, "  \"log_history\": [\n")
		for i, e := range log {
			fmt.Fprintf(&b, "    {\n      \"epoch\": %s,\n      \"grad_norm\": %s,\n      \"learning_rate\": %s,\n      \"loss\": %s,\n      \"step\": %d\n    }",
				PyFloat(e.epoch), PyFloat(e.gradNorm), PyFloat(e.lr), PyFloat(e.loss), e.step)
			if i < len(log)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "  ],\n")
	}
	fmt.Fprintf(&b, "  \"logging_steps\": %d,\n  \"max_steps\": %d,\n  \"num_input_tokens_seen\": 0,\n", o.LoggingSteps, maxSteps)
	fmt.Fprintf(&b, "  \"num_train_epochs\": %d,\n  \"save_steps\": %d,\n", epochs, o.SaveSteps)
	fmt.Fprintf(&b, "  \"stateful_callbacks\": {\n    \"TrainerControl\": {\n      \"args\": {\n")
	fmt.Fprintf(&b, "        \"should_epoch_stop\": false,\n        \"should_evaluate\": false,\n        \"should_log\": false,\n        \"should_save\": true,\n        \"should_training_stop\": false\n")
	fmt.Fprintf(&b, "      },\n      \"attributes\": {}\n    }\n  },\n")
	fmt.Fprintf(&b, "  \"total_flos\": %s,\n  \"train_batch_size\": 8,\n  \"trial_name\": null,\n  \"trial_params\": null\n}\n",
		PyFloat(float64(step)*1.2345e12))
	return b.Bytes()
}
