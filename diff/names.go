package diff

import (
	"strconv"
	"strings"
)

// Layer splits a tensor name at its block number: the first dot-separated
// component after the first that is all digits. For
// "model.layers.3.mlp.down_proj.weight" it returns "model.layers.3", 3 and
// true; for "encoder.block.0.layer.1.wi.weight" "encoder.block.0", 0 and true.
// Names outside any block (embeddings, final norm) return ok false.
func Layer(name string) (layer string, index int, ok bool) {
	parts := strings.Split(name, ".")
	for i := 1; i < len(parts)-1; i++ {
		if n, err := strconv.Atoi(parts[i]); err == nil && n >= 0 && parts[i] == strconv.Itoa(n) {
			return strings.Join(parts[:i+1], "."), n, true
		}
	}
	return "", 0, false
}

// Role is the tensor name with its block number replaced by "*", so that
// "model.layers.3.mlp.down_proj.weight" and "model.layers.7.mlp.down_proj.weight"
// share the role "model.layers.*.mlp.down_proj.weight". Names outside any
// block are their own role.
func Role(name string) string {
	layer, _, ok := Layer(name)
	if !ok {
		return name
	}
	i := strings.LastIndexByte(layer, '.')
	return layer[:i+1] + "*" + name[len(layer):]
}

// layerLess orders layer keys by prefix, then numerically by block number.
func layerLess(a, b string) bool {
	pa, na := splitLayerKey(a)
	pb, nb := splitLayerKey(b)
	if pa != pb {
		return pa < pb
	}
	return na < nb
}

func splitLayerKey(k string) (string, int) {
	i := strings.LastIndexByte(k, '.')
	if i < 0 {
		return k, -1
	}
	n, err := strconv.Atoi(k[i+1:])
	if err != nil {
		return k, -1
	}
	return k[:i], n
}
