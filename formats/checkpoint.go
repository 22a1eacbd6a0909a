package formats

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Layout says how a checkpoint's weights are laid out on disk.
type Layout string

const (
	LayoutFile    Layout = "file"    // a single .safetensors path
	LayoutSingle  Layout = "single"  // a directory with model.safetensors
	LayoutSharded Layout = "sharded" // a directory with an index.json and shards
	LayoutAdapter Layout = "adapter" // a directory with adapter_model.safetensors (PEFT)
	LayoutFiles   Layout = "files"   // a directory of other .safetensors files
)

// Checkpoint is one checkpoint, described from headers alone: opening it reads no
// tensor data.
type Checkpoint struct {
	Path     string // as given
	Dir      string // directory holding the files
	Layout   Layout
	Index    *Index // nil unless sharded and the index parsed
	Config   *ModelConfig
	Files    []*File
	Tensors  []*Tensor // by file, then data order
	Problems []Problem // index, layout and config findings (file findings are on each File)
	// Incomplete is set for a trainer checkpoint directory without trainer_state.json
	// (written last): its save is in progress or was interrupted.
	Incomplete bool
	byName     map[string]*Tensor
}

// Tensor returns the tensor with that name, or nil.
func (c *Checkpoint) Tensor(name string) *Tensor { return c.byName[name] }

// AllProblems lists every format finding: each file's read-rule violation, each
// file's other problems, then the checkpoint's own.
func (c *Checkpoint) AllProblems() []Problem {
	var out []Problem
	for _, f := range c.Files {
		if f.Err != nil {
			var fe *Error
			if errors.As(f.Err, &fe) {
				out = append(out, Problem{SevError, fe})
			}
		}
		out = append(out, f.Problems...)
	}
	return append(out, c.Problems...)
}

// TotalBytes is the sum of the files' sizes.
func (c *Checkpoint) TotalBytes() int64 {
	var n int64
	for _, f := range c.Files {
		n += f.Size
	}
	return n
}

// indexPatterns match the sharded indexes: safetensors', then PyTorch's
// (pytorch_model.bin.index.json).
var indexPatterns = []string{"*.safetensors.index*.json", "*.bin.index*.json"}

// isTrainingState reports whether a file name is one of the training-state
// files a trainer writes beside the weights (not weights themselves).
func isTrainingState(name string) bool {
	lower := strings.ToLower(name)
	switch {
	case lower == "training_args.bin", lower == "scaler.pt", lower == "scheduler.pt",
		strings.HasPrefix(lower, "optimizer") && (strings.HasSuffix(lower, ".pt") || strings.HasSuffix(lower, ".bin")),
		strings.HasPrefix(lower, "rng_state") && strings.HasSuffix(lower, ".pth"):
		return true
	}
	return false
}

// IsTrainingState reports whether a file (a path or a name) is one of the
// training-state files a trainer writes beside the weights: optimizer.pt,
// scheduler.pt, scaler.pt, rng_state*.pth, training_args.bin.
func IsTrainingState(path string) bool { return isTrainingState(filepath.Base(path)) }

// IsWeightsFile reports whether a file name is one weights are stored under:
// a .safetensors or .gguf file, or a PyTorch .bin/.pt/.pth/.ckpt that is not training
// state (optimizer.pt, rng_state.pth, training_args.bin, ...).
func IsWeightsFile(name string) bool {
	lower := strings.ToLower(filepath.Base(name))
	switch filepath.Ext(lower) {
	case ".safetensors", ".gguf":
		return true
	case ".bin", ".pt", ".pth", ".ckpt":
		return !isTrainingState(lower)
	}
	return false
}

// torchWeights lists the PyTorch weight files of a directory (.bin, .pt,
// .pth, not training state), sorted.
func torchWeights(l *dirListing) []string {
	var out []string
	for _, pat := range []string{"*.bin", "*.pt", "*.pth"} {
		for _, n := range l.match(pat) {
			if !isTrainingState(BaseOf(n)) {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Open describes the checkpoint at path: a .safetensors file or a checkpoint
// directory. It returns an error only when it cannot do its job at all (path
// missing or unreadable, a directory without weights); every format problem is
// recorded on the result instead.
func Open(path string) (*Checkpoint, error) {
	st, err := FSFor(path).Stat(path)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Path: path, byName: map[string]*Tensor{}}
	if !st.IsDir() {
		c.Dir, c.Layout = DirOf(path), LayoutFile
		if err := c.addFile(path, BaseOf(path)); err != nil {
			return nil, err
		}
		c.index()
		return c, nil
	}
	c.Dir = path
	list, err := listDir(path)
	if err != nil {
		return nil, err
	}
	var indexes []string
	for _, pat := range indexPatterns {
		if found := list.match(pat); len(found) > 0 {
			indexes = found
			break
		}
	}
	if !list.listable {
		// A store that cannot list (plain HTTP): the index names save_pretrained writes.
		for _, name := range []string{"model.safetensors.index.json", "pytorch_model.bin.index.json"} {
			if exists(JoinPath(path, name)) {
				indexes = []string{JoinPath(path, name)}
				break
			}
		}
	}
	sort.Slice(indexes, func(i, j int) bool {
		ci, cj := canonicalIndex(indexes[i]), canonicalIndex(indexes[j])
		if ci != cj {
			return ci
		}
		return indexes[i] < indexes[j]
	})
	switch {
	case len(indexes) > 0:
		c.Layout = LayoutSharded
		if err := c.openSharded(indexes[0], indexes[1:], list); err != nil {
			return nil, err
		}
	case exists(JoinPath(path, "model.safetensors")):
		c.Layout = LayoutSingle
		if err := c.addFile(JoinPath(path, "model.safetensors"), "model.safetensors"); err != nil {
			return nil, err
		}
	case exists(JoinPath(path, "adapter_model.safetensors")):
		c.Layout = LayoutAdapter
		if err := c.addFile(JoinPath(path, "adapter_model.safetensors"), "adapter_model.safetensors"); err != nil {
			return nil, err
		}
	case exists(JoinPath(path, "pytorch_model.bin")):
		c.Layout = LayoutSingle
		if err := c.addFile(JoinPath(path, "pytorch_model.bin"), "pytorch_model.bin"); err != nil {
			return nil, err
		}
	case exists(JoinPath(path, "adapter_model.bin")):
		c.Layout = LayoutAdapter
		if err := c.addFile(JoinPath(path, "adapter_model.bin"), "adapter_model.bin"); err != nil {
			return nil, err
		}
	default:
		names := append(list.match("*.safetensors"), list.match("*.gguf")...)
		if len(names) == 0 {
			names = torchWeights(list)
		}
		if len(names) == 0 && len(trainingStateFiles(list)) == 0 {
			return nil, &Error{Kind: ErrNoWeights, File: path, Offset: -1,
				Detail: "no weights here (looked for model.safetensors, a *.safetensors.index.json, adapter_model.safetensors, pytorch_model.bin, a *.bin.index.json, *.bin, *.pt, *.pth, *.gguf)"}
		}
		sort.Strings(names)
		c.Layout = LayoutFiles
		for _, n := range names {
			if err := c.addFile(n, BaseOf(n)); err != nil {
				return nil, err
			}
		}
	}
	// Training state is read beside the weights, whatever their format (or
	// alone): a Trainer checkpoint is its weights and its training state.
	// Callers that want the model alone take c.Weights().
	for _, p := range trainingStateFiles(list) {
		if err := c.addFile(p, BaseOf(p)); err != nil {
			return nil, err
		}
	}
	c.index()
	c.markIncomplete()
	if cfg, err := ReadConfig(JoinPath(path, "config.json")); err == nil {
		c.Config = cfg
		c.Problems = append(c.Problems, cfg.Check(c)...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		why := err.Error()
		var fe *Error
		if errors.As(err, &fe) {
			why = fe.Detail // fe.Error() would repeat the path
		}
		c.Problems = append(c.Problems, Problem{SevWarning, &Error{Kind: ErrConfig, File: JoinPath(path, "config.json"), Offset: -1,
			Detail: fmt.Sprintf("config.json could not be read, so shapes were not checked against it: %s", why)}})
	}
	return c, nil
}

func exists(p string) bool { _, err := FSFor(p).Stat(p); return err == nil }

// canonicalIndex reports whether an index has the name save_pretrained gives it.
func canonicalIndex(p string) bool {
	b := filepath.Base(p)
	return b == "model.safetensors.index.json" || b == "pytorch_model.bin.index.json"
}

// trainingStateFiles lists the PyTorch training-state files beside the
// weights (optimizer.pt, scheduler.pt, rng_state*.pth, training_args.bin,
// scaler.pt), sorted. They are read like weights; their tensors are named by
// their key paths (state.0.exp_avg), as in a file given directly, and told
// apart from the weights by their file.
func trainingStateFiles(l *dirListing) []string {
	var out []string
	for _, e := range l.entries {
		if !e.IsDir() && isTrainingState(e.Name()) {
			out = append(out, JoinPath(l.dir, e.Name()))
		}
	}
	return out
}

func (c *Checkpoint) addFile(path, name string) error {
	f, err := ReadFileHeader(path, name)
	if err != nil {
		return err
	}
	c.Files = append(c.Files, f)
	return nil
}

// index fills Tensors and the name map from the files, first declaration winning
// across files.
func (c *Checkpoint) index() {
	for _, f := range c.Files {
		for _, t := range f.Tensors() {
			c.Tensors = append(c.Tensors, t)
			if _, dup := c.byName[t.Name]; !dup {
				c.byName[t.Name] = t
			}
		}
	}
}

// Weights returns c without the training-state files read beside its weights
// (optimizer.pt, scheduler.pt, rng_state*.pth, ...): the checkpoint as a model,
// for the commands that write or compare weights. It is c itself when c has
// none (a file given directly is kept whatever its name).
func (c *Checkpoint) Weights() *Checkpoint {
	if c.Layout == LayoutFile {
		return c
	}
	keep := make([]*File, 0, len(c.Files))
	for _, f := range c.Files {
		if !isTrainingState(BaseOf(f.Path)) {
			keep = append(keep, f)
		}
	}
	if len(keep) == len(c.Files) {
		return c
	}
	out := *c
	out.Files, out.Tensors, out.byName = keep, nil, map[string]*Tensor{}
	out.index()
	return &out
}

// TiedTensorsKey is the __metadata__ key of a safetensors file written from a
// PyTorch checkpoint that lists its tied tensors: a JSON object mapping each
// tensor left out to the tensor whose bytes it shares (loaders tie them again).
const TiedTensorsKey = "tied_tensors"

// SafetensorsName is the name a PyTorch weights file (or index) of a
// checkpoint directory takes when the checkpoint is written as safetensors,
// as save_pretrained names them: pytorch_model.bin → model.safetensors,
// pytorch_model-00001-of-00002.bin → model-00001-of-00002.safetensors,
// pytorch_model.bin.index.json → model.safetensors.index.json, model.pt →
// model.safetensors. A safetensors name is returned as it is.
func SafetensorsName(name string) string {
	dir, base := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		dir, base = name[:i+1], name[i+1:]
	}
	lower := strings.ToLower(base)
	switch {
	case strings.HasSuffix(lower, ".safetensors") || strings.Contains(lower, ".safetensors.index"):
		return name
	case strings.Contains(lower, ".bin.index"):
		i := strings.Index(lower, ".bin.index")
		base = base[:i] + ".safetensors" + base[i+len(".bin"):]
	default:
		for _, ext := range []string{".bin", ".pt", ".pth", ".ckpt"} {
			if strings.HasSuffix(lower, ext) {
				base = base[:len(base)-len(ext)]
				break
			}
		}
		base += ".safetensors"
	}
	if strings.HasPrefix(base, "pytorch_model") {
		base = strings.TrimPrefix(base, "pytorch_")
	}
	return dir + base
}

// SafeJoin joins a file name from an index to dir, refusing absolute names, names
// with a ".." element and names that resolve (through symlinks) outside dir.
func SafeJoin(dir, name string) (string, error) {
	bad := func(why string) error {
		return &Error{Kind: ErrUnsafePath, File: filepath.Join(dir, "…"), Offset: -1,
			Detail: fmt.Sprintf("shard name %q %s; refused without opening it", name, why)}
	}
	if name == "" || filepath.IsAbs(name) || strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) {
		return "", bad("is absolute or empty")
	}
	for _, el := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if el == ".." {
			return "", bad("contains ..")
		}
	}
	if !filepath.IsLocal(name) {
		return "", bad("is not a local path")
	}
	if IsRemote(dir) {
		// A store has no symlinks: the name checks above are the whole rule.
		return JoinPath(dir, filepath.ToSlash(name)), nil
	}
	joined := filepath.Join(dir, name)
	if _, err := os.Lstat(joined); err != nil {
		return joined, nil // missing: reported by the caller
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(joined)
	if err != nil {
		return "", bad(fmt.Sprintf("cannot be resolved (%v)", err))
	}
	if rel, err := filepath.Rel(realDir, real); err != nil || !filepath.IsLocal(rel) {
		return "", bad("resolves through a symlink to " + real + ", outside the checkpoint directory")
	}
	return joined, nil
}

// Renamed returns a copy of c whose tensors carry the names rename gives them
// (the same files, offsets and problems): the view of a checkpoint under
// another naming scheme, such as the names llama.cpp's converter writes.
func (c *Checkpoint) Renamed(rename func(string) string) *Checkpoint {
	out := *c
	out.Tensors = make([]*Tensor, len(c.Tensors))
	out.byName = make(map[string]*Tensor, len(c.Tensors))
	for i, t := range c.Tensors {
		cp := *t
		cp.Name = rename(t.Name)
		out.Tensors[i] = &cp
		if _, dup := out.byName[cp.Name]; !dup {
			out.byName[cp.Name] = &cp
		}
	}
	return &out
}
