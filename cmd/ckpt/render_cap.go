package main

import (
	"strconv"
	"strings"
)

// maxSameKind is how many messages of one kind the text output shows: an index
// naming 200,000 absent tensors gives 200,000 findings that differ only in the
// tensor's name. The rest are counted in one line; --json lists them all.
const maxSameKind = 10

// sameKindCap decides which of a list of messages the text output shows: the
// first maxSameKind of each kind.
type sameKindCap struct {
	total, seen map[string]int
}

// newSameKindCap counts the kinds of the messages that will be passed to show,
// in the same order.
func newSameKindCap(kinds []string) *sameKindCap {
	c := &sameKindCap{total: map[string]int{}, seen: map[string]int{}}
	for _, k := range kinds {
		c.total[k]++
	}
	return c
}

// show reports whether the next message of kind k is shown; rest > 0 when it
// is the last shown of its kind and that many more are left out.
func (c *sameKindCap) show(k string) (ok bool, rest int) {
	c.seen[k]++
	n := c.seen[k]
	if n > maxSameKind {
		return false, 0
	}
	if n == maxSameKind {
		return true, c.total[k] - n
	}
	return true, 0
}

// moreOfTheSameKind is the line standing for the messages left out.
func moreOfTheSameKind(rest int) string {
	return "… and " + groupDigits(uint64(rest)) + " more of the same kind (--json lists them all)"
}

// messageKind is the kind of a message for capping: its text with the tensor's
// quoted name and every number taken out, after the given qualifiers
// (severity, check).
func messageKind(msg, tensor string, qualifiers ...string) string {
	if tensor != "" {
		msg = strings.ReplaceAll(msg, strconv.Quote(tensor), `""`)
	}
	b := []byte(msg)
	out := b[:0]
	for i, c := range b {
		if c >= '0' && c <= '9' {
			if i > 0 && b[i-1] >= '0' && b[i-1] <= '9' {
				continue
			}
			c = '#'
		}
		out = append(out, c)
	}
	return strings.Join(qualifiers, "\x00") + "\x00" + string(out)
}
