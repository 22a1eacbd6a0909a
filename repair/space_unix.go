//go:build unix

package repair

import "golang.org/x/sys/unix"

// freeBytes is the space available to this user on the file system of dir, or
// -1 when unknown.
func freeBytes(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
