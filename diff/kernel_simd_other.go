//go:build !amd64 || noasm

package diff

import "github.com/ckpt-tool/ckpt/formats"

// No assembly here (another architecture, or a build with -tags noasm): the Go
// twin folds every group.
func asmFolder(formats.DType) groupFolder { return nil }

// asmNarrow has no narrow loop to return either.
func asmNarrow(formats.DType) groupFolder { return nil }

// asmNarrowIn has no unchecked narrow loop to return.
func asmNarrowIn(formats.DType) groupFolder { return nil }

// asmRange has no range pass to return: nothing would use it.
func asmRange(formats.DType) func(raw []byte) bool { return nil }
