// Package synthtest tests the synthetic checkpoint generator in testdata/synth
// (the go tool skips testdata directories, so the generator's tests live here)
// and keeps the committed example checkpoint in sync with it.
package synthtest
