// Package inspect owns value-level statistics of checkpoints: per-dtype kernels,
// the parallel scan engine, outlier detection and findings. It reads bytes
// through package formats and knows nothing of the command line.
package inspect
