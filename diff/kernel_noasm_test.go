//go:build noasm

package diff

import "testing"

// TestNoasmBuildHasNoDiffAssembly: built with -tags noasm, no assembly loop is
// chosen, so the suite runs the kernels other architectures run.
func TestNoasmBuildHasNoDiffAssembly(t *testing.T) {
	for _, dt := range simdDTypes {
		if asmFolder(dt) != nil {
			t.Errorf("%s: an assembly loop is chosen in a noasm build", dt)
		}
		if asmNarrow(dt) != nil {
			t.Errorf("%s: a narrow assembly loop is chosen in a noasm build", dt)
		}
		if asmNarrowIn(dt) != nil || narrowRangeOf(dt) != nil {
			t.Errorf("%s: an unchecked narrow loop or its range pass is chosen in a noasm build", dt)
		}
	}
}
