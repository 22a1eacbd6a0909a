//go:build !unix

package formats

import "os"

const openNonblock = 0

func clearNonblock(*os.File) error { return nil }
