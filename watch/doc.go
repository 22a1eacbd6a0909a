// Package watch owns following a training run while the trainer writes it:
// it notices each checkpoint-N directory of a run directory once it is
// complete (trainer_state.json written, or nothing changed for a settle time),
// scans it, compares it with the previous one (the relative update and the
// drift-onset rule of package diff), reads its training log, and reports what
// it finds as events. It can keep copies of the newest healthy checkpoint and
// of the last one before a drift onset out of the trainer's rotation (hard
// links on the same file system, verified copies otherwise).
//
// It reads through packages formats, inspect and diff; it never prints and
// knows nothing of the command line: events go to a callback.
package watch
