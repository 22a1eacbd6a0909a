package inspect

import "github.com/ckpt-tool/ckpt/formats/ggml"

// ggmlIntKernels are the integer kernels of the block types whose values are
// a scale times a small integer (kernel_ggml.go); each takes a pass of whole
// blocks and says false (the pass is then dequantized) when a block of it has
// a non-finite scale.
var ggmlIntKernels = map[ggml.Type]func(src []byte) (Acc, bool){}
