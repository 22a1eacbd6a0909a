// Package inspect owns value-level statistics of checkpoints: per-dtype kernels,
// the parallel scan engine, outlier detection and findings. It reads bytes
// through package formats and knows nothing of the command line.
//
// Kernels (Stats, one per family of dtypes) compute an Acc: exact counts of
// NaN, ±Inf, zeros and subnormals, the first non-finite element, and over the
// finite values min, max, absmax, mean, M2 and the sum of squares in float64.
// The 8- and 16-bit dtypes are counted into a histogram of bit patterns and
// every statistic follows exactly from the occupied bins; F32 and F64 are
// folded in cached blocks. Each kernel is tested, and fuzzed, against
// ReferenceStats, the plain element-by-element twin. The package uses no
// unsafe code: unaligned data is read with encoding/binary.
//
// Scan cuts every tensor into chunks, scans them on all cores and merges each
// tensor's chunk accumulators in order, so results do not depend on the
// number of workers. A scan can be split across processes: Partition assigns
// each tensor to one of N parts, ScanTensors scans one part and Assemble builds
// the Result of one Scan from every part's accumulators. Findings: nonfinite (any NaN or Inf), format (the file's
// read-rule violations and read failures) and outlier (see Thresholds).
package inspect
