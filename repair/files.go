package repair

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// Files of a checkpoint directory that are training state: valid only together
// with the weights they were saved with, so never copied beside repaired ones.
var trainingState = map[string]bool{
	"optimizer.pt": true, "scheduler.pt": true, "scaler.pt": true, "trainer_state.json": true,
	"training_args.bin": true, "latest": true, "zero_to_fp32.py": true, "optimizer.bin": true,
	"scheduler.bin": true, "random_states_0.pkl": true,
}

// Extensions of weights in other formats: they may hold BAD's damaged weights.
var otherWeights = map[string]bool{
	".bin": true, ".pt": true, ".pth": true, ".ckpt": true, ".h5": true, ".msgpack": true,
	".gguf": true, ".onnx": true, ".pkl": true, ".npz": true, ".safetensors": true,
}

// classify says whether a top-level entry of BAD's directory is copied, and if
// not, why. weights are the names the repair writes itself.
func classify(name string, info os.FileInfo, weights map[string]bool) (copy bool, why string) {
	lower := strings.ToLower(name)
	switch {
	case weights[name]:
		return false, "" // written by the repair
	case strings.HasPrefix(name, "."):
		return false, "hidden file"
	case info.IsDir():
		return false, "directory (DeepSpeed global_step*/ and other state are not copied)"
	case !info.Mode().IsRegular():
		return false, "not a regular file"
	case trainingState[lower] || strings.HasPrefix(lower, "rng_state") || strings.HasPrefix(lower, "optimizer") || strings.HasPrefix(lower, "scheduler"):
		return false, "training state: it belongs to BAD's weights, not the repaired ones"
	case (strings.Contains(lower, ".safetensors.index") || strings.Contains(lower, ".bin.index")) && strings.HasSuffix(lower, ".json"):
		return false, "index of another variant of the weights, which this repair does not write"
	case otherWeights[filepath.Ext(lower)]:
		return false, "weights outside the repaired layout: they may hold BAD's damaged values"
	}
	return true, ""
}

// planDirectory decides which files of BAD's directory are copied beside the
// repaired weights (config.json, generation_config.json, tokenizer files and
// other small files) and which are not (training state, other weights), and
// advises how to resume training.
func (p *Plan) planDirectory() {
	if p.bad.Index != nil {
		p.Index = formats.SafetensorsName(filepath.Base(p.bad.Index.Path)) // a PyTorch index is written as safetensors
	}
	weights := map[string]bool{}
	for _, f := range p.Files {
		weights[strings.SplitN(filepath.ToSlash(f.Name), "/", 2)[0]] = true
	}
	if p.Index != "" {
		weights[p.Index] = true
	}
	entries, err := formats.FSFor(p.bad.Dir).ReadDir(p.bad.Dir)
	if err != nil {
		p.Warnings = append(p.Warnings, fmt.Sprintf("cannot list %s, so no non-weight file is copied: %v", p.bad.Dir, err))
		return
	}
	var state []string
	for _, e := range entries {
		info, err := formats.FSFor(p.bad.Dir).Stat(formats.JoinPath(p.bad.Dir, e.Name())) // follows symlinks (HF cache snapshots)
		if err != nil {
			p.Skip = append(p.Skip, Skipped{e.Name(), fmt.Sprintf("cannot be read: %v", err)})
			continue
		}
		ok, why := classify(e.Name(), info, weights)
		switch {
		case ok:
			p.Copy = append(p.Copy, e.Name())
		case why != "":
			p.Skip = append(p.Skip, Skipped{e.Name(), why})
			if strings.HasPrefix(why, "training state") {
				state = append(state, e.Name())
			}
		}
	}
	sort.Strings(p.Copy)
	if len(state) > 0 {
		p.ResumeAdvice = fmt.Sprintf("BAD's training state (%s) was not copied: it belongs to the run that diverged (optimizer moments, scheduler position, step count). "+
			"To resume training safely, resume from GOOD itself if its optimizer state is sound (its moments match its weights; ckpt scan GOOD checks them), e.g. --resume_from_checkpoint %s, "+
			"with a lower learning rate or tighter gradient clipping than the run that diverged; "+
			"or start a new run from the repaired weights in %s with a fresh optimizer and a warm-up.",
			strings.Join(state, ", "), p.Good, p.Out)
	}
}
