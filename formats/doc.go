// Package formats owns everything about checkpoint bytes on disk: the safetensors
// header parser and validator, the streaming writer, the sharded index, dtypes and
// their bit layouts, byte sources (mmap and pread), the PyTorch readers (torch.save
// zip and legacy files, through the restricted unpickler of formats/pickle; tensors
// located by offset, views read through their strides by ViewReader), and the
// Hugging Face config.json and trainer_state.json readers.
//
// It never prints and never exits: every problem is returned as a typed error
// (see errors.go) or recorded as a Problem on the value that was opened.
package formats
