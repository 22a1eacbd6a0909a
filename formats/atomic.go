package formats

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// AtomicFile is a file written under a temporary name in its destination
// directory and renamed into place only by Commit, after an fsync; the directory
// is fsynced after the rename. Abort (or a crash) leaves the destination untouched.
type AtomicFile struct {
	*os.File
	dest      string
	overwrite bool
	done      bool
}

// CreateAtomic starts writing dest. It refuses to replace an existing file unless
// overwrite is true (the error wraps fs.ErrExist), and checks again at Commit.
func CreateAtomic(dest string, overwrite bool) (*AtomicFile, error) {
	if !overwrite {
		if _, err := os.Lstat(dest); err == nil {
			return nil, fmt.Errorf("%s: refusing to overwrite: %w", dest, fs.ErrExist)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return nil, err
	}
	// CreateTemp makes the file 0600; a committed checkpoint gets the 0644 that
	// saved weights usually have, so other users and services can read it.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &AtomicFile{File: f, dest: dest, overwrite: overwrite}, nil
}

// Dest is the path the file will have once committed.
func (a *AtomicFile) Dest() string { return a.dest }

// Commit fsyncs, closes and renames the file into place, then fsyncs the
// directory. Without overwrite, a dest that appeared since CreateAtomic is not
// replaced: the rename is done by a hard link, which fails if dest exists.
func (a *AtomicFile) Commit() error {
	if a.done {
		return fmt.Errorf("%s: already committed or aborted", a.dest)
	}
	a.done = true
	tmp := a.Name()
	if err := a.Sync(); err != nil {
		a.File.Close()
		os.Remove(tmp)
		return fmt.Errorf("%s: fsync: %w", a.dest, err)
	}
	if err := a.File.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: close: %w", a.dest, err)
	}
	if err := a.place(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(a.dest))
}

func (a *AtomicFile) place(tmp string) error {
	if a.overwrite {
		return os.Rename(tmp, a.dest)
	}
	err := os.Link(tmp, a.dest)
	if err == nil {
		return os.Remove(tmp)
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: refusing to overwrite (it appeared while being written): %w", a.dest, fs.ErrExist)
	}
	// A file system without hard links: check, then rename (a small window).
	if _, serr := os.Lstat(a.dest); serr == nil {
		return fmt.Errorf("%s: refusing to overwrite: %w", a.dest, fs.ErrExist)
	}
	return os.Rename(tmp, a.dest)
}

// Abort discards the temporary file. It is safe to call after Commit.
func (a *AtomicFile) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.File.Close()
	os.Remove(a.Name())
}

// SyncDir fsyncs a directory so that renames into it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%s: fsync directory: %w", dir, err)
	}
	return nil
}
