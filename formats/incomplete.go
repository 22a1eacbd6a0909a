package formats

import (
	"errors"
	"path/filepath"
	"regexp"
)

// ErrIncomplete marks evidence that a checkpoint is still being written or that
// its save was interrupted, as opposed to corruption of a finished save.
var ErrIncomplete = errors.New("checkpoint is incomplete: still being written, or the save was interrupted")

// trainerDirRe matches the directory names the HF Trainer and DeepSpeed save into.
var trainerDirRe = regexp.MustCompile(`^(checkpoint-|global_step)\d+$`)

// looksLikeTrainerSave reports whether dir was written by a training loop that
// writes trainer_state.json last (the HF Trainer).
func looksLikeTrainerSave(dir string) bool {
	if trainerDirRe.MatchString(BaseOf(cleanLocal(dir))) {
		return true
	}
	for _, name := range []string{"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"} {
		if exists(JoinPath(dir, name)) {
			return true
		}
	}
	return false
}

// markIncomplete recognises a trainer checkpoint caught mid-save: the Trainer
// writes trainer_state.json last, so when it is absent a short shard or a
// missing shard is an unfinished save, not corruption. Such problems are
// relabelled (errors.Is(err, ErrIncomplete)) and, when the weights are complete
// anyway, a warning says the save may not have finished.
func (c *Checkpoint) markIncomplete() {
	if c.Layout == LayoutFile || exists(JoinPath(c.Dir, "trainer_state.json")) || !looksLikeTrainerSave(c.Dir) {
		return
	}
	const why = "incomplete save (no trainer_state.json, which the Trainer writes last: the checkpoint is still being written or its save was interrupted): "
	relabel := func(e *Error) {
		e.Also = errors.Join(e.Also, ErrIncomplete)
		e.Detail = why + e.Detail
	}
	found := false
	for _, f := range c.Files {
		var fe *Error
		if errors.As(f.Err, &fe) && errors.Is(fe, ErrTruncated) {
			relabel(fe)
			found = true
		}
	}
	for _, p := range c.Problems {
		if errors.Is(p.Err, ErrMissingShard) {
			relabel(p.Err)
			found = true
		}
	}
	c.Incomplete = true
	if !found {
		c.Problems = append(c.Problems, Problem{SevWarning, &Error{Kind: ErrIncomplete, File: JoinPath(c.Dir, "trainer_state.json"), Offset: -1,
			Detail: "missing: the Trainer writes it last, so this save may still be in progress or was interrupted (the weights themselves are complete)"}})
	}
}

// cleanLocal is filepath.Clean for a local path; a URL is returned as it is.
func cleanLocal(p string) string {
	if IsRemote(p) {
		return p
	}
	return filepath.Clean(p)
}
