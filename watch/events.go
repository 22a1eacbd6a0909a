package watch

import (
	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Event is one thing the watch reports. Its JSON form is one line of
// `ckpt watch --json`; the "event" field names its kind.
type Event interface{ eventName() string }

// Event kinds (the "event" field).
const (
	KindCheckpoint  = "checkpoint"
	KindDriftOnset  = "drift_onset"
	KindUnhealthy   = "unhealthy"
	KindTrainingLog = "training_log"
	KindKept        = "kept"
)

// Verdicts of a checkpoint event.
const (
	Healthy   = "healthy"
	Unhealthy = "unhealthy"
)

// CheckpointEvent is a complete checkpoint, scanned and compared with the
// previous one.
type CheckpointEvent struct {
	Event   string `json:"event"` // "checkpoint"
	Step    int    `json:"step"`
	Path    string `json:"path"`
	Verdict string `json:"verdict"` // healthy or unhealthy
	// RelUpdate is ||θ − θ_prev|| / ||θ_prev|| from the previous checkpoint
	// (null for the first, when the previous one is gone, or when undefined).
	RelUpdate *float64 `json:"rel_update"`
	// UpdateRatio is RelUpdate over the median of the earlier updates, the
	// quantity the drift-onset rule compares with its factor (null until the
	// rule has enough history).
	UpdateRatio *float64          `json:"update_ratio_to_median"`
	Findings    []inspect.Finding `json:"findings"` // errors and warnings of the scan
}

// OnsetEvent is the drift onset: the first interval whose update jumps above
// the onset factor times the median of the ones before (diff.DriftOnset).
type OnsetEvent struct {
	Event string `json:"event"` // "drift_onset"
	diff.Onset
}

// UnhealthyEvent is a checkpoint with error findings; Culprits are those findings.
type UnhealthyEvent struct {
	Event    string         `json:"event"` // "unhealthy"
	Step     int            `json:"step"`
	Path     string         `json:"path"`
	Culprits []diff.Culprit `json:"culprits"`
}

// LogEvent is an event of the training log (trainer_state.json's
// log_history), named as bisect names them (diff.EventNonFiniteLoss, ...).
type LogEvent struct {
	Event   string `json:"event"` // "training_log"
	Kind    string `json:"kind"`
	Step    int    `json:"step"`
	Message string `json:"message"`
}

// KeptEvent says that a checkpoint is now kept out of the rotation, where and why.
type KeptEvent struct {
	Event   string   `json:"event"` // "kept"
	Step    int      `json:"step"`
	Path    string   `json:"path"`    // the checkpoint in the run
	Copy    string   `json:"copy"`    // the kept copy
	Method  string   `json:"method"`  // "hardlink" (no bytes copied) or "copy" (verified)
	Reasons []string `json:"reasons"` // ReasonNewestHealthy and/or ReasonBeforeDrift
	// Released are kept copies removed because nothing needs them any more.
	Released []string `json:"released"`
}

// Why a checkpoint is kept.
const (
	ReasonNewestHealthy = "newest_healthy"
	ReasonBeforeDrift   = "before_drift_onset"
)

func (*CheckpointEvent) eventName() string { return KindCheckpoint }
func (*OnsetEvent) eventName() string      { return KindDriftOnset }
func (*UnhealthyEvent) eventName() string  { return KindUnhealthy }
func (*LogEvent) eventName() string        { return KindTrainingLog }
func (*KeptEvent) eventName() string       { return KindKept }
