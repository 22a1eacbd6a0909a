package watch

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
)

// ManifestName is the file in the keep directory that says which kept copy is
// which and why (JSON, replaced atomically).
const ManifestName = "kept.json"

// keptCopy is one checkpoint kept out of the rotation.
type keptCopy struct {
	Step    int      `json:"step"`
	Source  string   `json:"source"`  // the checkpoint in the run
	Copy    string   `json:"copy"`    // the kept directory
	Method  string   `json:"method"`  // hardlink or copy
	Reasons []string `json:"reasons"` // why it is kept
}

type manifest struct {
	Kept []*keptCopy `json:"kept"`
}

// keeper maintains the keep directory: each kept checkpoint is a complete
// directory named as in the run (checkpoint-N), made under a temporary name
// and renamed into place, so a kept copy is never half-written; a copy no
// longer needed is removed only after its replacement is in place.
type keeper struct {
	dir      string
	copyOnly bool
	kept     []*keptCopy
}

func newKeeper(dir string, copyOnly bool) (*keeper, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("keep directory %s: %w", dir, err)
	}
	k := &keeper{dir: dir, copyOnly: copyOnly}
	// A previous watch's copies stay protected: adopt those still present.
	if data, err := os.ReadFile(filepath.Join(dir, ManifestName)); err == nil {
		var m manifest
		if json.Unmarshal(data, &m) == nil {
			for _, c := range m.Kept {
				if c != nil && c.Copy != "" && filepath.Dir(c.Copy) == filepath.Clean(dir) {
					if fi, err := os.Stat(c.Copy); err == nil && fi.IsDir() {
						k.kept = append(k.kept, c)
					}
				}
			}
		}
	}
	return k, nil
}

// keep makes e the checkpoint kept for reason, taking the reason from the
// copy that held it (removed when nothing else keeps it).
func (k *keeper) keep(e *diff.Entry, reason string) ([]*KeptEvent, error) {
	var holder *keptCopy
	for _, c := range k.kept {
		if c.Source == e.Path && c.Step == e.Step {
			holder = c
		}
	}
	if holder == nil {
		c, err := k.materialize(e)
		if err != nil {
			return nil, err
		}
		holder = c
	}
	if !slices.Contains(holder.Reasons, reason) {
		holder.Reasons = append(holder.Reasons, reason)
		sort.Strings(holder.Reasons)
	}
	var released []*keptCopy
	var keep []*keptCopy
	for _, c := range k.kept {
		if c != holder {
			c.Reasons = slices.DeleteFunc(c.Reasons, func(r string) bool { return r == reason })
			if len(c.Reasons) == 0 {
				released = append(released, c)
				continue
			}
		}
		keep = append(keep, c)
	}
	k.kept = keep
	if err := k.writeManifest(); err != nil {
		return nil, err
	}
	ev := &KeptEvent{Event: KindKept, Step: holder.Step, Path: holder.Source, Copy: holder.Copy, Method: holder.Method,
		Reasons: slices.Clone(holder.Reasons), Released: []string{}}
	var errs []error
	for _, c := range released {
		if err := os.RemoveAll(c.Copy); err != nil {
			errs = append(errs, fmt.Errorf("removing the kept copy %s: %w", c.Copy, err))
			continue
		}
		ev.Released = append(ev.Released, c.Copy)
	}
	return []*KeptEvent{ev}, errors.Join(errs...)
}

// copyOf is the kept copy of e, "" when it is not kept.
func (k *keeper) copyOf(e *diff.Entry) string {
	for _, c := range k.kept {
		if c.Source == e.Path && c.Step == e.Step {
			return c.Copy
		}
	}
	return ""
}

// materialize puts a complete copy of e in the keep directory.
func (k *keeper) materialize(e *diff.Entry) (*keptCopy, error) {
	name := filepath.Base(e.Path)
	dest := filepath.Join(k.dir, name)
	tmp, err := os.MkdirTemp(k.dir, "."+name+".tmp-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		os.RemoveAll(tmp)
		return nil, err
	}
	method, err := cloneTree(e.Path, tmp, k.copyOnly)
	if err == nil {
		err = formats.SyncDir(tmp)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("keeping %s: %w", e.Path, err)
	}
	// A directory of that name (an older copy of the same step) is moved
	// aside, not overwritten, until the new one is in place.
	var old string
	if _, err := os.Lstat(dest); err == nil {
		if old, err = os.MkdirTemp(k.dir, "."+name+".old-"); err == nil {
			err = os.Rename(dest, old)
		}
		if err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("keeping %s: moving the older %s aside: %w", e.Path, dest, err)
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.RemoveAll(tmp)
		if old != "" {
			os.Rename(old, dest)
		}
		return nil, fmt.Errorf("keeping %s: %w", e.Path, err)
	}
	if err := formats.SyncDir(k.dir); err != nil {
		return nil, err
	}
	if old != "" {
		os.RemoveAll(old)
	}
	var keep []*keptCopy
	for _, c := range k.kept { // the copy just replaced
		if c.Copy != dest {
			keep = append(keep, c)
		}
	}
	c := &keptCopy{Step: e.Step, Source: e.Path, Copy: dest, Method: method}
	k.kept = append(keep, c)
	return c, nil
}

func (k *keeper) writeManifest() error {
	data, err := json.MarshalIndent(manifest{Kept: k.kept}, "", "  ")
	if err != nil {
		return err
	}
	f, err := formats.CreateAtomic(filepath.Join(k.dir, ManifestName), true)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// cloneTree recreates the directory src at dst (which exists, empty): hard
// links to src's files when allowed and possible (same file system), verified
// byte copies otherwise. It returns "hardlink" when every file was linked,
// "copy" when any was copied.
func cloneTree(src, dst string, copyOnly bool) (string, error) {
	linking := !copyOnly
	method := "hardlink"
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case !d.Type().IsRegular():
			return nil // sockets, pipes: not part of a checkpoint
		}
		if linking {
			if err := os.Link(p, target); err == nil {
				a, errA := os.Stat(p)
				b, errB := os.Stat(target)
				if errA == nil && errB == nil && os.SameFile(a, b) {
					return nil
				}
				os.Remove(target)
				return fmt.Errorf("%s: the hard link %s does not point at it", p, target)
			} else if errors.Is(err, fs.ErrNotExist) {
				return err
			}
			linking = false // another file system, or links not allowed: copy
		}
		method = "copy"
		return copyVerified(p, target)
	})
	return method, err
}

// copyVerified copies a file, fsyncs it, then reads the copy back and checks
// that it holds the bytes read from the source (and that the source did not
// change meanwhile).
func copyVerified(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	before, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	after, err := os.Stat(src)
	if err != nil {
		return err
	}
	if n != before.Size() || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		return fmt.Errorf("%s changed while it was being copied", src)
	}
	back, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer back.Close()
	h2 := sha256.New()
	if _, err := io.Copy(h2, back); err != nil {
		return fmt.Errorf("reading back %s: %w", dst, err)
	}
	if !bytes.Equal(h.Sum(nil), h2.Sum(nil)) {
		return fmt.Errorf("the copy %s does not hold the bytes of %s", dst, src)
	}
	return nil
}
