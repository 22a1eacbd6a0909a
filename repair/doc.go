// Package repair owns planning, writing and verifying repaired checkpoints: given
// a damaged checkpoint (BAD) and an earlier healthy one (GOOD), it decides which
// tensors of BAD to take from GOOD (a strategy: damaged tensors, damaged
// transformer blocks, everything, or only the non-finite elements), checks that
// they match in dtype and shape, and writes the result in BAD's layout (shard
// names and split, index, non-weight files) with a provenance entry in every
// shard's __metadata__.
//
// Writing is streaming and safe: tensors are copied chunk by chunk (memory is
// bounded by the chunk size, not the model) into a temporary directory beside
// the output, every file is fsynced, the result is re-read, hashed and scanned
// (every tensor must have the bytes it was copied from, by SHA-256), and
// only a healthy, verified result is renamed into place. Inputs are never
// written to, and a process killed at any moment leaves either no output or a
// complete, verified one.
//
// It reads through package formats (which also names transformer blocks, for
// the layers strategy) and judges health through package inspect; choosing
// GOOD from a run is left to the caller. It never prints and knows nothing of
// the command line.
package repair
