package diff

import (
	"strconv"
	"strings"
)

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
