package formats

import (
	"strconv"
	"strings"
)

// The one rule for where a tensor sits in a model, used by scan's outlier
// groups, diff's aggregates and repair's layers strategy.
//
// A tensor's layer is its name up to and including its block number: the
// first dot-separated component, after the first and before the last, that is
// a decimal number written without a sign or leading zeros. Its role is its
// name with that number replaced by "*". Hugging Face and GGUF names follow
// the same shape:
//
//	model.layers.3.mlp.down_proj.weight  layer model.layers.3, role model.layers.*.mlp.down_proj.weight
//	encoder.block.0.layer.1.wi.weight    layer encoder.block.0, role encoder.block.*.layer.1.wi.weight
//	blk.7.attn_q.weight                  layer blk.7,           role blk.*.attn_q.weight
//
// Names outside any block (embeddings, the final norm, token_embd.weight,
// output.weight) have no layer and are their own role.

// maxLayerDigits bounds a block number (larger is not a layer index).
const maxLayerDigits = 9

// Layer returns the layer of a tensor name, its block number and true, or
// "", 0 and false when the name is outside any block.
func Layer(name string) (layer string, index int, ok bool) {
	start := strings.IndexByte(name, '.')
	if start < 0 {
		return "", 0, false
	}
	for start < len(name) {
		// name[start] is the dot before the component that begins at start+1.
		rest := name[start+1:]
		end := strings.IndexByte(rest, '.')
		if end < 0 {
			return "", 0, false // the last component is never a block number
		}
		if n, ok := blockNumber(rest[:end]); ok {
			return name[:start+1+end], n, true
		}
		start += 1 + end
	}
	return "", 0, false
}

// blockNumber parses a canonical decimal block number.
func blockNumber(s string) (int, bool) {
	if s == "" || len(s) > maxLayerDigits || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// Role returns the tensor name with its block number replaced by "*" and
// true, so that model.layers.3.mlp.down_proj.weight and
// model.layers.7.mlp.down_proj.weight share the role
// model.layers.*.mlp.down_proj.weight; a name outside any block is returned
// unchanged with false.
func Role(name string) (role string, ok bool) {
	layer, _, ok := Layer(name)
	if !ok {
		return name, false
	}
	i := strings.LastIndexByte(layer, '.')
	return layer[:i+1] + "*" + name[len(layer):], true
}
