// Package probe owns the forward pass of decoder-only language models (the
// Llama family: llama, mistral, qwen2, qwen3, gemma) on a few tokens, run on the
// CPU in the precision the model is served in, and the report of where the
// activations first stop being finite and whether the next-token distributions
// are valid. It reads weights through formats, one row block of one matrix at a
// time, so memory is bounded by a block, not by the size of the model.
//
// It never prints or exits: ckpt probe renders its Report.
package probe
