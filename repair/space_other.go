//go:build !unix

package repair

// freeBytes is unknown on this system.
func freeBytes(dir string) int64 { return -1 }
