//go:build linux

package repair

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// kernelCopy copies n bytes at off of in to the current offset of out with
// copy_file_range(2): the kernel moves the pages, no byte passes through this
// process. ok is false when the file systems cannot (nothing was copied then,
// and the caller copies through a buffer).
func kernelCopy(out *outFile, in *input, off, n int64) (ok bool, err error) {
	if in.osf == nil {
		return false, nil // a remote input: its bytes come through the process
	}
	for n > 0 {
		if err := out.hooks.check("write", out.path); err != nil {
			return true, err
		}
		k, err := unix.CopyFileRange(int(in.osf.Fd()), &off, int(out.f.Fd()), nil, int(min(n, 1<<30)), 0)
		switch {
		case err != nil && k <= 0 && isUnsupported(err) && !out.kernelCopied:
			return false, nil
		case err != nil:
			return true, &os.PathError{Op: "copy_file_range", Path: out.path, Err: err}
		case k == 0:
			return true, errAt(ErrInputChanged, in.path, "", "the file ended early (at offset %d): it changed while the repair was running", off)
		}
		out.kernelCopied = true
		n -= int64(k)
	}
	return true, nil
}

func isUnsupported(err error) bool {
	return errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EBADF) || errors.Is(err, unix.EPERM)
}

// startWriteback asks the kernel to start writing the file's bytes
// [from, to) to disk without waiting (sync_file_range with
// SYNC_FILE_RANGE_WRITE), so that the disk works while the hashes are still
// being computed and the final fsync has little left to wait for. Errors are
// ignored: the fsync that follows reports any.
func startWriteback(out *outFile, from, to int64) {
	if to > from {
		_ = unix.SyncFileRange(int(out.f.Fd()), from, to-from, unix.SYNC_FILE_RANGE_WRITE)
	}
}
