//go:build unix && !linux

package formats

// mapPopulate: no prefaulting flag here; pages fault in on first touch.
const mapPopulate = 0
