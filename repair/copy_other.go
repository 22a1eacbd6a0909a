//go:build !linux

package repair

// kernelCopy is not available here: the caller copies through a buffer.
func kernelCopy(out *outFile, in *input, off, n int64) (ok bool, err error) { return false, nil }

// startWriteback does nothing here: the final fsync writes everything.
func startWriteback(out *outFile, from, to int64) {}
