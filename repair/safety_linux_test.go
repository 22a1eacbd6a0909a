//go:build linux

package repair

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNoSpaceOnSmallTmpfs writes to a real, small file system (a tmpfs mount,
// which needs root; skipped otherwise): the free-space check refuses up front,
// and without it the write fails with ENOSPC; either way no OUT is left.
func TestNoSpaceOnSmallTmpfs(t *testing.T) {
	bad, good, _ := pair(t, 2, dmgA)
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=16k"); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root and CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, 0) })
	before := treeSums(t, bad, good)
	out := filepath.Join(mnt, "repaired")

	_, err := Run(context.Background(), Options{Bad: bad, Good: good, Out: out})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("error %v, want ErrNoSpace", err)
	}
	_, err = Run(context.Background(), Options{Bad: bad, Good: good, Out: out, hooks: &hooks{skipSpaceCheck: true}})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error %v, want ENOSPC", err)
	}
	if got := besideOut(t, out); len(got) != 0 {
		t.Errorf("left on the full file system: %v", got)
	}
	assertUnchanged(t, before, bad, good)
}
