package repair

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/ckpt-tool/ckpt/formats"
)

// target is the output path, checked against the inputs.
type target struct {
	abs       string // OUT, absolute
	parent    string // OUT's directory, absolute (created when missing)
	base      string
	dir       bool // the output is a directory (BAD is one)
	exists    bool // OUT existed when checked (only allowed with Force)
	leftovers []string
}

// Temporary names beside OUT: ".OUT.ckpt-tmp-*" while writing, ".OUT.ckpt-old-*"
// for a replaced OUT on the way out.
func (t *target) tmpPattern() string { return "." + t.base + ".ckpt-tmp-*" }
func (t *target) oldPattern() string { return "." + t.base + ".ckpt-old-*" }

// checkTarget refuses an OUT that is, or is inside, an input, an OUT that
// exists (unless force), and with force an OUT that contains an input.
func checkTarget(out string, bad, good *formats.Checkpoint, force bool) (*target, error) {
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, err
	}
	t := &target{abs: abs, parent: filepath.Dir(abs), base: filepath.Base(abs), dir: bad.Layout != formats.LayoutFile}
	if t.base == string(filepath.Separator) || t.base == "." || t.base == ".." {
		return nil, fmt.Errorf("%w: %q cannot be an output path", ErrOptions, out)
	}
	// Every place an input lives, with symlinks resolved.
	// A remote input (a URL) cannot be where the local OUT is.
	var inputs []string
	add := func(p string) {
		if !formats.IsRemote(p) {
			inputs = append(inputs, realPath(p))
		}
	}
	for _, c := range []*formats.Checkpoint{bad, good} {
		add(c.Path)
		for _, f := range c.Files {
			add(f.Path)
		}
		if c.Index != nil {
			add(c.Index.Path)
		}
	}
	// OUT as a location (its directory resolved), and what OUT resolves to when it
	// exists and is a symlink.
	outs := []string{filepath.Join(realPath(t.parent), t.base)}
	st, lerr := os.Lstat(abs)
	if lerr == nil {
		t.exists = true
		outs = append(outs, realPath(abs))
	} else if !errors.Is(lerr, fs.ErrNotExist) {
		return nil, lerr
	}
	for _, o := range outs {
		for _, in := range inputs {
			if within(o, in) {
				what := "is"
				if o != in {
					what = "is inside"
				}
				return nil, errAt(ErrOutputIsInput, out, "", "the output %s the input %s", what, in)
			}
		}
	}
	if t.exists {
		if !force {
			kind := "file"
			if st.IsDir() {
				kind = "directory"
			}
			return nil, errAt(ErrOutputExists, out, "", "the output already exists (a %s)", kind)
		}
		for _, o := range outs {
			for _, in := range inputs {
				if within(in, o) {
					return nil, errAt(ErrOutputIsInput, out, "", "the output contains the input %s, and replacing it would delete that input", in)
				}
			}
		}
		for _, c := range []*formats.Checkpoint{bad, good} {
			for _, f := range c.Files {
				if same(abs, f.Path) {
					return nil, errAt(ErrOutputIsInput, out, "", "the output is the input file %s (a hard link or symlink to it)", f.Path)
				}
			}
		}
	}
	t.leftovers = t.findLeftovers()
	return t, nil
}

// realPath resolves symlinks in the longest existing prefix of p (absolute).
func realPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	rest := ""
	for cur := abs; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// within reports whether path a is b or lies inside b.
func within(a, b string) bool {
	if a == b {
		return true
	}
	r, err := filepath.Rel(b, a)
	return err == nil && r != "." && filepath.IsLocal(r)
}

func (t *target) findLeftovers() []string {
	var out []string
	for _, pat := range []string{t.tmpPattern(), t.oldPattern()} {
		m, _ := filepath.Glob(filepath.Join(t.parent, pat))
		out = append(out, m...)
	}
	sort.Strings(out)
	return out
}

// makeTemp creates the temporary output beside OUT: a directory, or for a
// single-file output a directory holding the one file (so that either way
// nothing but the final rename ever touches OUT). It returns the directory
// and the path of the output inside it.
func (t *target) makeTemp() (dir, out string, err error) {
	if err := os.MkdirAll(t.parent, 0o755); err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp(t.parent, t.tmpPattern())
	if err != nil {
		return "", "", err
	}
	if t.dir {
		// MkdirTemp makes it private (0700); OUT is an ordinary directory.
		if err := os.Chmod(dir, 0o755); err != nil {
			os.Remove(dir)
			return "", "", err
		}
		return dir, dir, nil
	}
	return dir, filepath.Join(dir, t.base), nil
}

// commit moves the finished output from tmpOut into place at OUT and makes the
// rename durable. Without an existing OUT the rename refuses to replace
// anything that appeared meanwhile; with Force an existing OUT is exchanged
// atomically (or, where the system cannot exchange, renamed aside first, so
// that a crash leaves no OUT rather than a mixed one) and then removed.
func (t *target) commit(tmpDir, tmpOut string, force bool, h *hooks) error {
	if err := h.check("rename", t.abs); err != nil {
		return err
	}
	if !t.dir {
		// The file moves out of its temporary directory, which is then removed.
		defer os.Remove(tmpDir)
	}
	_, lerr := os.Lstat(t.abs)
	switch {
	case lerr != nil && !errors.Is(lerr, fs.ErrNotExist):
		return lerr
	case lerr != nil: // OUT absent: it must stay absent until our rename.
		if err := renameNoReplace(tmpOut, t.abs); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return errAt(ErrOutputExists, t.abs, "", "the output appeared while the repair was running; nothing was replaced")
			}
			return err
		}
	case !force:
		return errAt(ErrOutputExists, t.abs, "", "the output appeared while the repair was running; nothing was replaced")
	default:
		old, err := exchange(tmpOut, t.abs, t.parent, t.oldPattern())
		if err != nil {
			return err
		}
		if err := formats.SyncDir(t.parent); err != nil {
			return err
		}
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("the output is in place, but the replaced one could not be removed from %s: %w", old, err)
		}
	}
	return formats.SyncDir(t.parent)
}

// exchange puts src at dst and returns where the old dst now is.
func exchange(src, dst, parent, oldPattern string) (string, error) {
	if err := renameExchange(src, dst); err == nil {
		return src, nil
	} else if !errors.Is(err, errUnsupported) {
		return "", err
	}
	// Two renames: dst aside, then src into place. In between there is no
	// OUT at all, never a partial one.
	aside, err := os.MkdirTemp(parent, oldPattern)
	if err != nil {
		return "", err
	}
	old := filepath.Join(aside, "old")
	if err := os.Rename(dst, old); err != nil {
		os.Remove(aside)
		return "", err
	}
	if err := os.Rename(src, dst); err != nil {
		os.Rename(old, dst) // put it back
		os.Remove(aside)
		return "", err
	}
	return aside, nil
}

var errUnsupported = errors.New("not supported")
