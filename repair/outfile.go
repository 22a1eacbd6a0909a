package repair

import (
	"fmt"
	"io"
	"os"
)

func (h *hooks) check(op, path string) error {
	if h == nil || h.fault == nil {
		return nil
	}
	if err := h.fault(op, path); err != nil {
		return &os.PathError{Op: op, Path: path, Err: err}
	}
	return nil
}

// outFile is one file being written into the temporary output. Every write and
// sync goes through the test hooks, so that tests can make the disk fill up or
// fail at any point.
type outFile struct {
	f            *os.File
	path         string
	hooks        *hooks
	kernelCopied bool  // copy_file_range has written into it
	flushed      int64 // writeback started for [0, flushed)
}

// writebackEvery is how many bytes are written before the kernel is asked to
// start writing them to disk.
const writebackEvery = 32 << 20

// wrote notes that the file now ends at end, starting writeback when enough
// is pending (or, with all, whatever is pending).
func (o *outFile) wrote(end int64, all bool) {
	if end-o.flushed >= writebackEvery || all && end > o.flushed {
		startWriteback(o, o.flushed, end)
		o.flushed = end
	}
}

func createOut(path string, h *hooks) (*outFile, error) {
	if err := h.check("create", path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return &outFile{f: f, path: path, hooks: h}, nil
}

func (o *outFile) Write(p []byte) (int, error) {
	if err := o.hooks.check("write", o.path); err != nil {
		return 0, err
	}
	return o.f.Write(p)
}

func (o *outFile) WriteAt(p []byte, off int64) (int, error) {
	if err := o.hooks.check("write", o.path); err != nil {
		return 0, err
	}
	return o.f.WriteAt(p, off)
}

// syncClose makes the file durable and closes it.
func (o *outFile) syncClose() error {
	if err := o.hooks.check("sync", o.path); err != nil {
		o.f.Close()
		return err
	}
	if err := o.f.Sync(); err != nil {
		o.f.Close()
		return fmt.Errorf("fsync %s: %w", o.path, err)
	}
	return o.f.Close()
}

// copyFileOut copies a regular file into the output, durably.
func copyFileOut(src, dst string, h *hooks, buf []byte) error {
	in, _, size, err := openFile(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := createOut(dst, h)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, io.NewSectionReader(in, 0, size), buf); err != nil {
		out.f.Close()
		return err
	}
	return out.syncClose()
}

// syncDirOut fsyncs a directory of the output.
func syncDirOut(dir string, h *hooks) error {
	if err := h.check("sync", dir); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
