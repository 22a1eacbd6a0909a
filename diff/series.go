package diff

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// ErrNoSeries means a run directory holds no checkpoint directories.
var ErrNoSeries = errors.New("no checkpoint series found")

// Entry is one checkpoint of a series.
type Entry struct {
	Path         string // the checkpoint directory or file
	Step         int    // training step (from the name or trainer_state.json; else the position)
	StepKnown    bool   // Step came from the name or trainer_state.json
	TrainerState string // path of its trainer_state.json, "" when it has none
	HasScaler    bool   // scaler.pt is present (fp16 AMP with a loss scaler)
	Incomplete   string // why the checkpoint is skipped; "" when it is complete
	kind         string // "checkpoint", "global_step" or "path"
}

// Name is the entry's base name (checkpoint-100).
func (e *Entry) Name() string { return formats.BaseOf(e.Path) }

var (
	hfDirRe = regexp.MustCompile(`^checkpoint-(\d+)$`)
	dsDirRe = regexp.MustCompile(`^global_step(\d+)$`)
	digitRe = regexp.MustCompile(`\d+`)
)

// Discover lists the checkpoints of a run directory: the checkpoint-N
// directories the Hugging Face Trainer writes and the global_stepN directories
// of DeepSpeed, ordered by step. Incomplete checkpoints are listed with the
// reason they are skipped: no weights, or no trainer_state.json
// while another checkpoint of the run has one (the Trainer writes it last, so
// its absence means the save was interrupted).
func Discover(runDir string) ([]*Entry, error) {
	st, err := formats.FSFor(runDir).Stat(runDir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory: %w", runDir, ErrNoSeries)
	}
	des, err := formats.FSFor(runDir).ReadDir(runDir)
	if err != nil {
		return nil, err
	}
	bySteps := map[int]*Entry{}
	for _, de := range des {
		name := de.Name()
		var m []string
		kind := "checkpoint"
		if m = hfDirRe.FindStringSubmatch(name); m == nil {
			kind = "global_step"
			if m = dsDirRe.FindStringSubmatch(name); m == nil {
				continue
			}
		}
		p := formats.JoinPath(runDir, name)
		if fi, err := formats.FSFor(p).Stat(p); err != nil || !fi.IsDir() {
			continue
		}
		step, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		e := &Entry{Path: p, Step: step, StepKnown: true, kind: kind}
		// checkpoint-N wins over a global_stepN of the same step.
		if old := bySteps[step]; old == nil || (old.kind != "checkpoint" && kind == "checkpoint") {
			bySteps[step] = e
		}
	}
	if len(bySteps) == 0 {
		return nil, fmt.Errorf("%s: %w (looked for checkpoint-N and global_stepN directories; pass checkpoint paths instead)", runDir, ErrNoSeries)
	}
	var out []*Entry
	for _, e := range bySteps {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Step < out[j].Step })
	describe(out)
	return out, nil
}

// FromPaths makes a series of explicitly named checkpoints (directories or
// .safetensors files). The step of each comes from its name (checkpoint-N,
// global_stepN, else the last number in the name) or its trainer_state.json;
// when every path has one, the series is ordered by step, otherwise it keeps
// the order given.
func FromPaths(paths []string) ([]*Entry, error) {
	var out []*Entry
	allKnown := true
	for i, p := range paths {
		if _, err := formats.FSFor(p).Stat(p); err != nil {
			return nil, err
		}
		e := &Entry{Path: p, Step: i, kind: "path"}
		base := formats.BaseOf(p)
		if m := hfDirRe.FindStringSubmatch(base); m != nil {
			e.Step, e.StepKnown = atoi(m[1])
		} else if m := dsDirRe.FindStringSubmatch(base); m != nil {
			e.Step, e.StepKnown = atoi(m[1])
		} else if ts, err := formats.ReadTrainerState(formats.JoinPath(p, "trainer_state.json")); err == nil && ts.GlobalStep > 0 {
			e.Step, e.StepKnown = ts.GlobalStep, true
		} else if ds := digitRe.FindAllString(strings.TrimSuffix(base, filepath.Ext(base)), -1); len(ds) > 0 {
			e.Step, e.StepKnown = atoi(ds[len(ds)-1])
		}
		if !e.StepKnown {
			e.Step = i
		}
		allKnown = allKnown && e.StepKnown
		out = append(out, e)
	}
	if allKnown {
		sort.SliceStable(out, func(i, j int) bool { return out[i].Step < out[j].Step })
	}
	describe(out)
	return out, nil
}

func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// describe fills what each entry holds and marks the incomplete ones.
func describe(es []*Entry) {
	anyState := false
	for _, e := range es {
		fi, err := formats.FSFor(e.Path).Stat(e.Path)
		if err != nil {
			e.Incomplete = err.Error()
			continue
		}
		if !fi.IsDir() {
			if !formats.IsWeightsFile(e.Path) {
				e.Incomplete = "not a weights file (.safetensors, .gguf, or a PyTorch .bin/.pt/.pth)"
			}
			continue
		}
		if p := formats.JoinPath(e.Path, "trainer_state.json"); isFile(p) {
			e.TrainerState = p
			anyState = true
		}
		e.HasScaler = isFile(formats.JoinPath(e.Path, "scaler.pt"))
		if !hasWeights(e.Path) {
			e.Incomplete = "no weights"
		}
	}
	if !anyState {
		return
	}
	for _, e := range es {
		if e.Incomplete == "" && e.TrainerState == "" && e.kind != "global_step" && isDir(e.Path) {
			e.Incomplete = "no trainer_state.json while other checkpoints of the run have one (the Trainer writes it last: the save was probably interrupted)"
		}
	}
}

func isFile(p string) bool {
	fi, err := formats.FSFor(p).Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func isDir(p string) bool {
	fi, err := formats.FSFor(p).Stat(p)
	return err == nil && fi.IsDir()
}

// hasWeights reports whether a checkpoint directory holds weights at all: a
// weights file (safetensors or PyTorch) or a sharded index. Broken weights (missing shards, a
// directory where a file should be) are not "incomplete": they are scanned and
// reported.
func hasWeights(dir string) bool {
	des, err := formats.FSFor(dir).ReadDir(dir)
	if errors.Is(err, formats.ErrNotListable) {
		return true // a store that cannot list: opening it will tell
	}
	if err != nil {
		return false
	}
	for _, de := range des {
		n := de.Name()
		if formats.IsWeightsFile(n) || ((strings.Contains(n, ".safetensors.index") || strings.Contains(n, ".bin.index")) && strings.HasSuffix(n, ".json")) {
			return true
		}
	}
	return false
}
