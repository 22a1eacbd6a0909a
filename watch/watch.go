package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Options control Run. Zero values take the defaults in brackets.
type Options struct {
	// Settle, when positive, makes a checkpoint without trainer_state.json
	// complete once nothing in it changed for that long (for trainers that
	// write no state file). Zero: only trainer_state.json completes one.
	Settle time.Duration
	// Poll, when positive, looks at the run directory every Poll instead of
	// using file-system notifications. Zero: notifications (fsnotify), with a
	// look every RescanEvery as a safety net, and polling every
	// DefaultPoll when notifications are not available.
	Poll time.Duration
	// Once processes the checkpoints complete now and returns.
	Once bool
	// NewOnly leaves the checkpoints complete at the start unchecked: only
	// those saved from then on are (a run resumed into a directory that
	// still holds the checkpoints of its failed attempt).
	NewOnly bool
	// Keep, when set, is a directory where copies of the newest healthy
	// checkpoint and of the last one before a drift onset are kept.
	Keep string
	// KeepCopy copies bytes even where a hard link would do.
	KeepCopy    bool
	OnsetFactor float64         // [diff.DefaultOnsetFactor]
	Top         int             // tensors and layers named per interval [5]
	Scan        inspect.Options // for each scan
	Diff        diff.Options    // for each comparison
	// Emit receives each event, in order. An error it returns stops Run,
	// which returns that error (a way to stop on the first unhealthy
	// checkpoint).
	Emit func(Event) error
	// Log, when set, receives notes on what the watch does that are not
	// events (a checkpoint deleted before it could be checked, a fallback to
	// polling).
	Log func(format string, args ...any)
}

// DefaultPoll is the polling interval when notifications are unavailable.
const DefaultPoll = 2 * time.Second

// RescanEvery is how often the run directory is looked at even though
// notifications are in use (a missed or overflowed notification costs at most
// this long).
const RescanEvery = 10 * time.Second

var ckptDirRe = regexp.MustCompile(`^checkpoint-(\d+)$`)

// pending is a checkpoint directory seen but not processed yet.
type pending struct {
	step        int
	path        string
	fingerprint string    // names, sizes and times of its files
	changed     time.Time // when the fingerprint last changed
}

// watcher is the state of one Run.
type watcher struct {
	runDir  string
	opts    Options
	pending map[int]*pending
	done    map[int]string // steps processed or given up: the saveMark they had
	prev    *processed     // the previous checkpoint processed
	ivs     []diff.Interval
	steps   []int // steps processed, ascending
	onset   bool  // the drift onset was reported
	logSeen map[string]bool
	keeper  *keeper
	notify  *fsnotify.Watcher
	watched map[string]bool
}

// processed is a checkpoint already checked.
type processed struct {
	entry   *diff.Entry
	ckpt    *formats.Checkpoint
	healthy bool
}

// Run follows runDir until ctx is done (nil error) or, with Once, until the
// checkpoints complete now are processed. It returns the error Emit returned,
// if any, or an error when runDir cannot be read at the start.
func Run(ctx context.Context, runDir string, opts Options) error {
	if !opts.Once {
		if err := awaitDir(ctx, runDir, opts); err != nil || ctx.Err() != nil {
			return err
		}
	}
	w, err := newWatcher(runDir, opts)
	if err != nil {
		return err
	}
	if opts.NewOnly {
		w.skipExisting()
	}
	if w.opts.Once {
		return w.look(ctx, true)
	}
	return w.follow(ctx)
}

// awaitDir waits for a run directory that does not exist yet (the watch is
// often started before the trainer creates its output directory).
func awaitDir(ctx context.Context, dir string, opts Options) error {
	_, err := stat(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return nil // there, or an error newWatcher reports
	}
	interval := opts.Poll
	if interval <= 0 {
		interval = DefaultPoll
	}
	if opts.Log != nil {
		opts.Log("%s does not exist yet; waiting for it", dir)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := stat(dir); !errors.Is(err, fs.ErrNotExist) {
				return nil
			}
		}
	}
}

func newWatcher(runDir string, opts Options) (*watcher, error) {
	if opts.OnsetFactor <= 0 {
		opts.OnsetFactor = diff.DefaultOnsetFactor
	}
	if opts.Top <= 0 {
		opts.Top = 5
	}
	if opts.Emit == nil {
		opts.Emit = func(Event) error { return nil }
	}
	st, err := stat(runDir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory (watch follows a run directory holding checkpoint-N directories)", runDir)
	}
	w := &watcher{runDir: runDir, opts: opts, pending: map[int]*pending{}, done: map[int]string{},
		logSeen: map[string]bool{}, watched: map[string]bool{}}
	if opts.Keep != "" {
		k, err := newKeeper(opts.Keep, opts.KeepCopy)
		if err != nil {
			return nil, err
		}
		w.keeper = k
	}
	return w, nil
}

// follow looks at the run directory whenever notifications say something
// changed there (or every poll interval) until ctx is done.
func (w *watcher) follow(ctx context.Context) error {
	opts := w.opts
	interval := opts.Poll
	if interval <= 0 && formats.IsRemote(w.runDir) {
		w.log("%s is remote: polling every %v", w.runDir, DefaultPoll)
		interval = DefaultPoll
	}
	if interval <= 0 {
		n, err := fsnotify.NewWatcher()
		if err == nil {
			if err = n.Add(w.runDir); err != nil {
				n.Close()
			}
		}
		if err == nil {
			w.notify = n
			w.watched[w.runDir] = true
			defer n.Close()
			interval = RescanEvery
		} else {
			w.log("file-system notifications unavailable (%v); polling every %v", err, DefaultPoll)
			interval = DefaultPoll
		}
	}
	if w.opts.Settle > 0 {
		interval = min(interval, max(w.opts.Settle/4, 10*time.Millisecond))
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var events chan fsnotify.Event
	var errs chan error
	if w.notify != nil {
		events, errs = w.notify.Events, w.notify.Errors
	}
	for {
		if err := w.look(ctx, false); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case _, ok := <-events:
			if !ok {
				events = nil
			}
			w.drain(events)
		case err, ok := <-errs:
			if !ok {
				errs = nil
			} else {
				w.log("file-system notifications: %v (the run directory is still looked at every %v)", err, interval)
			}
		}
	}
}

// drain swallows the notifications that arrive with the first one (a save is
// many of them), so that one look handles them all.
func (w *watcher) drain(events chan fsnotify.Event) {
	if events == nil {
		return
	}
	t := time.NewTimer(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}

func (w *watcher) log(format string, args ...any) {
	if w.opts.Log != nil {
		w.opts.Log(format, args...)
	}
}

// look lists the run directory, updates what is pending and processes, in
// step order, every checkpoint that is complete. With final (Once), the
// checkpoints still incomplete are reported as not checked.
func (w *watcher) look(ctx context.Context, final bool) error {
	dirs, err := w.checkpointDirs()
	if err != nil {
		if final {
			return err
		}
		w.log("%s: %v (still watching)", w.runDir, err)
		return nil
	}
	now := time.Now()
	present := map[int]bool{}
	for _, d := range dirs {
		step, p := d.step, d.path
		if mark, ok := w.done[step]; ok {
			// Checked already, unless saved again since (a run resumed from
			// an earlier checkpoint writes its steps again): a new
			// trainer_state.json.
			if now := w.saveMark(p); now == "" || now == mark {
				continue
			}
			delete(w.done, step)
			w.warnSharedCopy(p, step)
		}
		if fi, err := stat(p); err != nil || !fi.IsDir() {
			continue
		}
		present[step] = true
		pd := w.pending[step]
		if pd == nil {
			pd = &pending{step: step, path: p, changed: now}
			w.pending[step] = pd
			if w.notify != nil && !w.watched[p] {
				if w.notify.Add(p) == nil {
					w.watched[p] = true
				}
			}
		}
		if fp := fingerprint(p); fp != pd.fingerprint {
			pd.fingerprint, pd.changed = fp, now
		}
	}
	for step, pd := range w.pending {
		if !present[step] {
			w.log("%s was deleted before it was complete; not checked", pd.path)
			w.unwatch(pd)
			delete(w.pending, step) // a later save of the same step is still checked
		}
	}
	steps := make([]int, 0, len(w.pending))
	for s := range w.pending {
		steps = append(steps, s)
	}
	sort.Ints(steps)
	// The newest complete checkpoint: older ones still incomplete were
	// interrupted saves (a trainer saves one checkpoint at a time).
	newest := -1
	for _, s := range steps {
		if w.complete(w.pending[s], now) {
			newest = s
		}
	}
	for _, s := range steps {
		if s > newest {
			break
		}
		pd := w.pending[s]
		if !w.complete(pd, now) {
			w.log("%s never completed (no trainer_state.json) and a later checkpoint did; not checked", pd.path)
			w.forget(s)
			continue
		}
		w.forget(s)
		if err := w.process(ctx, pd); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	if final {
		for _, s := range steps {
			if pd, ok := w.pending[s]; ok {
				w.log("%s is not complete yet (no trainer_state.json); not checked", pd.path)
			}
		}
	}
	return nil
}

// warnSharedCopy warns when a checkpoint saved again in place shares its
// files with a kept copy (hard links): the copy now holds the new save.
func (w *watcher) warnSharedCopy(path string, step int) {
	if w.keeper == nil {
		return
	}
	for _, c := range w.keeper.kept {
		if c.Source == path && c.Step == step && c.Method == "hardlink" {
			w.log("%s is being saved again in place; its kept copy %s is made of hard links to the same files and follows the new save (copies instead of links keep independent copies)", path, c.Copy)
		}
	}
}

type ckptDir struct {
	step int
	path string
}

// checkpointDirs lists the checkpoint-N entries of the run directory.
func (w *watcher) checkpointDirs() ([]ckptDir, error) {
	des, err := formats.FSFor(w.runDir).ReadDir(w.runDir)
	if err != nil {
		return nil, err
	}
	var out []ckptDir
	for _, de := range des {
		if m := ckptDirRe.FindStringSubmatch(de.Name()); m != nil {
			if step, err := strconv.Atoi(m[1]); err == nil {
				out = append(out, ckptDir{step, formats.JoinPath(w.runDir, de.Name())})
			}
		}
	}
	return out, nil
}

// skipExisting marks the checkpoints complete now as checked.
func (w *watcher) skipExisting() {
	dirs, _ := w.checkpointDirs()
	n := 0
	for _, d := range dirs {
		_, err := formats.ReadTrainerState(formats.JoinPath(d.path, "trainer_state.json"))
		if err == nil || (w.opts.Settle > 0 && hasWeights(d.path)) {
			w.done[d.step] = w.saveMark(d.path)
			n++
		}
	}
	w.log("%d checkpoints already in %s are not checked (new-only); checkpoints saved from now on are", n, w.runDir)
}

// forget drops a pending checkpoint for good: checked, or given up.
func (w *watcher) forget(step int) {
	if pd := w.pending[step]; pd != nil {
		w.unwatch(pd)
	}
	w.done[step] = ""
	if pd := w.pending[step]; pd != nil {
		w.done[step] = w.saveMark(pd.path)
	}
	delete(w.pending, step)
}

// saveMark identifies one save of a checkpoint: the size and modification
// time of its trainer_state.json ("" when it has none).
func (w *watcher) saveMark(dir string) string {
	fi, err := stat(formats.JoinPath(dir, "trainer_state.json"))
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
}

func (w *watcher) unwatch(pd *pending) {
	if w.notify != nil && w.watched[pd.path] {
		w.notify.Remove(pd.path)
		delete(w.watched, pd.path)
	}
}

// complete reports whether a checkpoint is written: its trainer_state.json
// parses (the Trainer writes it last), or, with Settle, it holds weights and
// nothing in it changed for Settle.
func (w *watcher) complete(pd *pending, now time.Time) bool {
	if _, err := formats.ReadTrainerState(formats.JoinPath(pd.path, "trainer_state.json")); err == nil {
		return true
	}
	return w.opts.Settle > 0 && pd.fingerprint != "" && now.Sub(pd.changed) >= w.opts.Settle && hasWeights(pd.path)
}

// fingerprint describes the files under dir (names, sizes, modification
// times): it changes while anything is being written there.
func fingerprint(dir string) string {
	var b []byte
	if formats.IsRemote(dir) {
		des, _ := formats.FSFor(dir).ReadDir(dir)
		for _, de := range des {
			if fi, err := de.Info(); err == nil {
				b = fmt.Appendf(b, "%s\x00%d\x00%d\n", de.Name(), fi.Size(), fi.ModTime().UnixNano())
			}
		}
		return string(b)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		b = fmt.Appendf(b, "%s\x00%d\x00%d\n", p, fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	return string(b)
}

func hasWeights(dir string) bool {
	des, _ := formats.FSFor(dir).ReadDir(dir)
	for _, de := range des {
		if !de.IsDir() && formats.IsWeightsFile(de.Name()) {
			return true
		}
	}
	return false
}

// stat describes path in the store that holds it.
func stat(path string) (fs.FileInfo, error) { return formats.FSFor(path).Stat(path) }

// gone reports whether a checkpoint was deleted (by the trainer's rotation).
func gone(path string) bool {
	_, err := stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// process checks one complete checkpoint and emits its events: the new
// training-log events, the checkpoint, the drift onset, unhealthy, kept.
func (w *watcher) process(ctx context.Context, pd *pending) error {
	if w.prev != nil && pd.step <= w.prev.entry.Step {
		// Resumed from an earlier checkpoint: a new series starts here.
		w.log("%s saved after step %d was checked: the run was resumed from an earlier checkpoint; its updates are measured from here on",
			pd.path, w.prev.entry.Step)
		w.prev, w.ivs, w.onset = nil, nil, false
		w.steps = slices.DeleteFunc(w.steps, func(s int) bool { return s >= pd.step })
	}
	e := &diff.Entry{Path: pd.path, Step: pd.step, StepKnown: true}
	ev := &CheckpointEvent{Event: KindCheckpoint, Step: pd.step, Path: pd.path, Findings: []inspect.Finding{}}
	var culprits []diff.Culprit
	c, err := formats.Open(pd.path)
	var r *inspect.Result
	var res *diff.Result // the update from the previous checkpoint, measured in the scan's pass
	var cmpErr error
	if err == nil {
		c = c.Weights() // watch judges and keeps the weights; training state is the trainer's
		r, res, cmpErr, err = w.scanAndCompare(ctx, c)
	}
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		if gone(pd.path) {
			w.log("%s was deleted while it was being checked; not checked", pd.path)
			return nil
		}
		if errors.Is(err, formats.ErrNoWeights) {
			// Weights in a format ckpt does not read, or none: not damage.
			w.log("%s holds no weights ckpt reads; not checked", pd.path)
			return nil
		}
		// Complete but unreadable: that is damage, not a save in progress.
		f := inspect.Finding{Severity: "error", Check: inspect.CheckFormat, File: pd.path, Message: err.Error()}
		ev.Findings = append(ev.Findings, f)
		culprits = append(culprits, diff.Culprit{File: pd.path, Check: f.Check, Message: f.Message})
		c = nil
	} else {
		for _, f := range r.Findings {
			if f.Severity == "error" || f.Severity == "warning" {
				ev.Findings = append(ev.Findings, f)
			}
			if f.Severity == "error" {
				layer, _, _ := formats.Layer(f.Tensor)
				culprits = append(culprits, diff.Culprit{Tensor: f.Tensor, File: f.File, Layer: layer, Check: f.Check, Message: f.Message})
			}
		}
	}
	healthy := len(culprits) == 0
	ev.Verdict = Healthy
	if !healthy {
		ev.Verdict = Unhealthy
	}

	// The update from the previous checkpoint (see scanAndCompare).
	var onset *diff.Onset
	if c != nil {
		if cmpErr != nil {
			w.log("comparing %s with %s: %v (no update measured)", w.prev.entry.Path, pd.path, cmpErr)
		} else if res != nil {
			iv := diff.NewInterval(w.prev.entry, e, res, w.opts.Top)
			base, ok := diff.OnsetBaseline(w.ivs)
			w.ivs = append(w.ivs, iv)
			ev.RelUpdate = iv.RelUpdate
			if ok && base > 0 && iv.RelUpdate != nil {
				ratio := *iv.RelUpdate / base
				if !math.IsInf(ratio, 0) && !math.IsNaN(ratio) {
					ev.UpdateRatio = &ratio
				}
			}
			if !w.onset {
				onset = diff.DriftOnset(w.ivs, w.opts.OnsetFactor)
			}
		}
	}
	w.steps = append(w.steps, pd.step)

	// The training log: events not reported before.
	if st, err := formats.ReadTrainerState(formats.JoinPath(pd.path, "trainer_state.json")); err == nil {
		for _, le := range diff.AnalyzeLog(st, w.steps).Events {
			key := le.Kind + "@" + strconv.Itoa(le.Step)
			if w.logSeen[key] {
				continue
			}
			w.logSeen[key] = true
			if err := w.opts.Emit(&LogEvent{Event: KindTrainingLog, Kind: le.Kind, Step: le.Step, Message: le.Message}); err != nil {
				return err
			}
		}
	}
	if err := w.opts.Emit(ev); err != nil {
		return err
	}
	var keepErr error
	if onset != nil {
		w.onset = true
		if err := w.opts.Emit(&OnsetEvent{Event: KindDriftOnset, Onset: *onset}); err != nil {
			return err
		}
	}
	if !healthy {
		if err := w.opts.Emit(&UnhealthyEvent{Event: KindUnhealthy, Step: pd.step, Path: pd.path, Culprits: culprits}); err != nil {
			return err
		}
	}
	if w.keeper != nil {
		var kept []*KeptEvent
		if onset != nil && w.prev != nil && w.prev.healthy {
			kept, keepErr = w.keeper.keep(w.prev.entry, ReasonBeforeDrift)
		}
		if keepErr == nil && healthy {
			var more []*KeptEvent
			more, keepErr = w.keeper.keep(e, ReasonNewestHealthy)
			kept = append(kept, more...)
		}
		for _, k := range kept {
			if err := w.opts.Emit(k); err != nil {
				return err
			}
		}
		if keepErr != nil {
			w.log("keeping a copy: %v", keepErr)
		}
	}
	w.prev = &processed{entry: e, ckpt: c, healthy: healthy}
	return nil
}
