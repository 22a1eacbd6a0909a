package formats

import (
	"fmt"
	"os"
	"path/filepath"
)

// AtomicFile is a file written under a temporary name in its destination
// directory and renamed into place only by Commit, after an fsync; the directory
// is fsynced after the rename. Abort (or a crash) leaves the destination untouched.
type AtomicFile struct {
	*os.File
	dest string
	done bool
}

// CreateAtomic starts writing dest. It refuses to replace an existing file unless
// overwrite is true.
func CreateAtomic(dest string, overwrite bool) (*AtomicFile, error) {
	if !overwrite {
		if _, err := os.Lstat(dest); err == nil {
			return nil, fmt.Errorf("%s: already exists", dest)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &AtomicFile{File: f, dest: dest}, nil
}

// Commit fsyncs, closes and renames the file into place, then fsyncs the directory.
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
	if err := os.Rename(tmp, a.dest); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(a.dest))
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
