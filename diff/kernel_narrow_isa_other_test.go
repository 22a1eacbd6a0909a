//go:build !amd64 || noasm

package diff

import "testing"

// forEachNarrowISA runs f once: this build has no narrow assembly loops to
// choose between.
func forEachNarrowISA(t *testing.T, f func(t *testing.T)) { f(t) }

// withNarrowISAs calls f once, for the same reason.
func withNarrowISAs(f func(isa string)) { f("go") }
