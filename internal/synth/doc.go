// Package synth generates synthetic safetensors checkpoints for tests and
// benchmarks, so that large data is made on demand rather than committed.
//
// It owns: named architectures with real Hugging Face tensor names and shapes
// (Arch, Tiny, Qwen2_0_5B, Qwen2_7B) and their config.json; WriteCheckpoint,
// which streams a single-file or sharded checkpoint tensor by tensor with a
// cheap deterministic PRNG; corruption injectors that damage generated files in
// precise, known ways (SetValues, FlipExponentBit, Truncate, RemoveShard,
// OverlapOffsets, WriteLFSPointer, EscapeIndex, ScaleTensor); and WriteRun, an
// HF-Trainer-style run directory whose ground truth (RunTruth) tests assert against;
// WriteExamples, the examples committed under testdata/example that the README's
// quick start runs on.
//
// GGUF encodes GGUF files, valid or deliberately broken, for the GGUF reader
// and the scan of quantized tensors (QuantBlocks, SetBlockScale).
//
// Values depend only on (seed, tensor name, element index): the same tensor has
// the same bytes whether the checkpoint is sharded or not. synth imports formats
// and formats/ggml only.
package synth
