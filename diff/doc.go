// Package diff owns the comparison of checkpoints: the per-tensor diff of two
// checkpoints (Compare), the discovery of a training run's checkpoint series
// (Discover), the bisect search for the first unhealthy checkpoint, the drift
// timeline of relative weight updates and its onset, the events of the
// Trainer's log (trainer_state.json), and the roll-back recommendation that
// follows from all of them (Bisect).
//
// It reads bytes through package formats and health through package inspect;
// it never prints and knows nothing of the command line.
package diff
