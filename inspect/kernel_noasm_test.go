//go:build noasm

package inspect

import (
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// TestNoasmBuildHasNoAssembly: built with -tags noasm, no assembly loop is
// linked or chosen, so the suite runs the kernels other architectures run.
func TestNoasmBuildHasNoAssembly(t *testing.T) {
	if simdBF16OK || simdF16OK || simdF32OK || simd512OK || bf16Asm.lanes != nil || bf16Asm512.narrow != nil || f16Asm512.narrow != nil || f32Asm512.narrow != nil || f16Asm.lanes != nil || f32Asm.lanes != nil || ggmlSumsAsmBuilt || ggmlSumsAsmOK || ggmlFoldQ8_0AsmOK || q4kCoreOK {
		t.Fatal("an assembly loop is present in a noasm build")
	}
	for _, dt := range []formats.DType{formats.BF16, formats.F16, formats.F32, formats.C64} {
		if simdHandles(dt) {
			t.Errorf("%s: the vector kernel is chosen in a noasm build", dt)
		}
	}
}
