package main

import (
	"fmt"
	"io"

	"github.com/ckpt-tool/ckpt/remote"
)

// What reading remote checkpoints cost in network traffic, as the text
// reports of inspect and scan (and inspect's JSON) say it.

// networkUse is the traffic of one command's work on a remote path.
type networkUse struct {
	Bytes    int64 `json:"bytes"`    // object bytes received
	Requests int64 `json:"requests"` // requests sent, retries included
}

// networkSince is the traffic since before was taken.
func networkSince(before remote.Stats) *networkUse {
	now := remote.Transferred()
	return &networkUse{Bytes: now.Bytes - before.Bytes, Requests: now.Requests - before.Requests}
}

// writeNetworkText says what a remote read transferred; nothing for a local one.
func writeNetworkText(w io.Writer, n *networkUse) {
	if n == nil {
		return
	}
	fmt.Fprintf(w, "\nread %s bytes over the network in %s\n", groupDigits(uint64(max(n.Bytes, 0))), plural(int(n.Requests), "request"))
}
