// Package optim owns the optimizer view of a training checkpoint: the
// torch.optim state dict in optimizer.pt (Adam/AdamW moments and step, SGD
// momentum, any other state by key path), its param_groups, scheduler.pt and
// trainer_state.json's global_step; the names of the parameters behind the
// optimizer's integer ids (reconstructed from the Hugging Face Trainer's
// two-group order for the Llama family, or from unique shapes, never guessed);
// and the checks a resume depends on: nonfinite or negative moments, state
// shapes that disagree with the weights, a step that disagrees with
// global_step, and the predicted size of the next Adam update.
package optim

import (
	"fmt"
	"math/big"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/pickle"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Name sources: how a parameter's name was established.
const (
	SourceOrder = "order" // the Trainer's parameter order, checked against the weight shapes
	SourceShape = "shape" // the only weight (and the only optimizer parameter) of its shape
)

// Group is one of the optimizer's param_groups.
type Group struct {
	LR          *float64  `json:"lr"`
	Betas       []float64 `json:"betas"`
	Eps         *float64  `json:"eps"`
	WeightDecay *float64  `json:"weight_decay"`
	Params      []int64   `json:"params"`
}

// StateTensor is one tensor of a parameter's state (exp_avg, ...).
type StateTensor struct {
	Key    string          // exp_avg, exp_avg_sq, max_exp_avg_sq, momentum_buffer, ...
	Path   string          // key path in the file: state.17.exp_avg
	Tensor *formats.Tensor // nil when the reader could not locate it
}

// Param is one parameter the optimizer knows, by its integer id.
type Param struct {
	ID         int64    `json:"id"`
	Name       *string  `json:"name"`
	NameSource *string  `json:"name_source"`
	Shape      []uint64 `json:"shape"` // of its state tensors; nil when it has none
	Step       *float64 `json:"step"`
	// NonFinite counts the nonfinite values of its state tensors (scan's
	// counts); nil until Check has run.
	NonFinite *uint64 `json:"nonfinite"`
	// UpdateRatio is ‖lr·m̂/(√v̂+ε)‖ / ‖θ‖ (see docs/optimizer.md); nil when it
	// cannot be computed (no Adam state, no weights, θ = 0).
	UpdateRatio *float64 `json:"update_ratio"`

	Group   int             `json:"-"`
	State   []StateTensor   `json:"-"`
	Weight  *formats.Tensor `json:"-"` // the named parameter's tensor in the weights
	ShapeOK bool            `json:"-"`
}

// Scheduler is what scheduler.pt says.
type Scheduler struct {
	LastLR    []float64 `json:"last_lr"`
	LastEpoch *int64    `json:"last_epoch"`
}

// State is the optimizer view of one checkpoint.
type State struct {
	File      string   `json:"file"`
	Algorithm string   `json:"algorithm"` // "adam" (Adam or AdamW), "sgd", or "unknown"
	Groups    []Group  `json:"groups"`
	Params    []*Param `json:"params"`
	// Naming says how the names were established, or why they were not.
	Naming     string     `json:"naming"`
	GlobalStep *int64     `json:"global_step"`
	Scheduler  *Scheduler `json:"scheduler"`
	// MaxUpdate is the largest UpdateRatio and the parameter it belongs to.
	MaxUpdate      *float64 `json:"max_update_ratio"`
	MaxUpdateParam *string  `json:"max_update_param"`

	// ScanOptions are used when Check scans the optimizer file itself.
	ScanOptions inspect.Options `json:"-"`
	// OwnScan is that scan: set by Check when the optimizer file is not part
	// of the checkpoint Read was given (a directory whose listing formats
	// could not read, so its training state is not in it), nil otherwise.
	OwnScan *inspect.Result `json:"-"`

	own      *formats.Checkpoint // the optimizer file opened on its own
	fused    []fusedPred         // per parameter, the predictions of Scan's one-read pass
	byTensor map[*formats.Tensor]*stateRef
}

type stateRef struct {
	p   *Param
	key string
}

// IsOptimizerFile reports whether a file name is one torch optimizer state is
// saved under (optimizer.pt, optimizer.bin, optimizer_0.pt, ...).
func IsOptimizerFile(name string) bool {
	lower := strings.ToLower(filepath.Base(name))
	return strings.HasPrefix(lower, "optimizer") && (strings.HasSuffix(lower, ".pt") || strings.HasSuffix(lower, ".bin"))
}

// Read builds the optimizer view of c: from its optimizer file (a checkpoint
// directory's optimizer.pt, or c itself when c is an optimizer file given
// directly). It returns nil when c holds no optimizer state, and an error only
// when the optimizer file was read but does not hold a torch.optim state dict.
func Read(c *formats.Checkpoint) (*State, error) {
	var f *formats.File
	for _, cf := range c.Files {
		if IsOptimizerFile(cf.Name) && cf.Format() == formats.ContainerTorch {
			f = cf
			break
		}
	}
	var own *formats.Checkpoint
	if f == nil && c.Layout != formats.LayoutFile {
		// A checkpoint whose directory could not be listed lacks its
		// training state: open optimizer.pt on its own.
		for _, name := range []string{"optimizer.pt", "optimizer.bin"} {
			p := formats.JoinPath(c.Dir, name)
			if _, err := formats.FSFor(p).Stat(p); err != nil {
				continue
			}
			oc, err := formats.Open(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if len(oc.Files) == 1 && oc.Files[0].Format() == formats.ContainerTorch {
				f, own = oc.Files[0], oc
			}
			break
		}
	}
	if f == nil || f.Pickled == nil {
		return nil, nil
	}
	root, ok := f.Pickled.(*pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("%s: not a torch.optim state dict (its pickle holds %s)", f.Path, pickle.Repr(f.Pickled, 40))
	}
	stateV, ok1 := root.Get("state")
	groupsV, ok2 := root.Get("param_groups")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%s: not a torch.optim state dict (no \"state\" and \"param_groups\" keys)", f.Path)
	}
	s := &State{File: f.Path, own: own, byTensor: map[*formats.Tensor]*stateRef{}}
	located := map[string]*formats.Tensor{}
	for _, t := range f.Tensors() {
		located[t.Name] = t
	}
	byID := map[int64]*Param{}
	for gi, g := range items(groupsV) {
		gd, ok := g.(*pickle.Dict)
		if !ok {
			return nil, fmt.Errorf("%s: param_groups[%d] is not a dict", f.Path, gi)
		}
		grp := Group{LR: num(gd, "lr"), Eps: num(gd, "eps"), WeightDecay: num(gd, "weight_decay")}
		if b, ok := gd.Get("betas"); ok {
			for _, x := range items(b) {
				if v, ok := toFloat(x); ok {
					grp.Betas = append(grp.Betas, v)
				}
			}
		}
		pv, _ := gd.Get("params")
		for _, x := range items(pv) {
			id, ok := toInt(x)
			if !ok {
				return nil, fmt.Errorf("%s: param_groups[%d] names a parameter that is not an integer id", f.Path, gi)
			}
			grp.Params = append(grp.Params, id)
			if byID[id] == nil {
				p := &Param{ID: id, Group: gi}
				byID[id] = p
				s.Params = append(s.Params, p)
			}
		}
		s.Groups = append(s.Groups, grp)
	}
	keys := map[string]bool{}
	sd, _ := stateV.(*pickle.Dict)
	if sd != nil {
		for i, k := range sd.Keys {
			id, ok := toInt(k)
			if !ok {
				continue
			}
			p := byID[id]
			if p == nil {
				p = &Param{ID: id, Group: -1}
				byID[id] = p
				s.Params = append(s.Params, p)
			}
			pd, _ := sd.Values[i].(*pickle.Dict)
			if pd == nil {
				continue
			}
			for j, kk := range pd.Keys {
				key := pickle.Key(kk)
				keys[key] = true
				switch v := pd.Values[j].(type) {
				case *pickle.Tensor:
					path := "state." + pickle.Key(k) + "." + key
					t := located[path]
					if key == "step" {
						if x, ok := scalarTensor(t); ok {
							p.Step = &x
						}
						continue
					}
					if len(v.Size) == 0 {
						continue
					}
					st := StateTensor{Key: key, Path: path, Tensor: t}
					p.State = append(p.State, st)
					if t != nil {
						s.byTensor[t] = &stateRef{p, key}
						if p.Shape == nil {
							p.Shape = append([]uint64(nil), t.Shape...)
						}
					}
				default:
					if key == "step" {
						if x, ok := toFloat(v); ok {
							p.Step = &x
						}
					}
				}
			}
		}
	}
	sort.SliceStable(s.Params, func(i, j int) bool { return s.Params[i].ID < s.Params[j].ID })
	switch {
	case keys["exp_avg"] && keys["exp_avg_sq"]:
		s.Algorithm = "adam"
	case keys["momentum_buffer"]:
		s.Algorithm = "sgd"
	default:
		s.Algorithm = "unknown"
	}
	s.readSidecars(c.Dir)
	s.name(c)
	return s, nil
}

// readSidecars reads trainer_state.json's global_step and scheduler.pt.
func (s *State) readSidecars(dir string) {
	if ts, err := formats.ReadTrainerState(formats.JoinPath(dir, "trainer_state.json")); err == nil {
		g := int64(ts.GlobalStep)
		s.GlobalStep = &g
	}
	p := formats.JoinPath(dir, "scheduler.pt")
	if _, err := formats.FSFor(p).Stat(p); err != nil {
		return
	}
	f, err := formats.ReadFileHeader(p, "scheduler.pt")
	if err != nil || f.Pickled == nil {
		return
	}
	d, ok := f.Pickled.(*pickle.Dict)
	if !ok {
		return
	}
	sch := &Scheduler{}
	if v, ok := d.Get("last_epoch"); ok {
		if n, ok := toInt(v); ok {
			sch.LastEpoch = &n
		}
	}
	if v, ok := d.Get("_last_lr"); ok {
		for _, x := range items(v) {
			if f, ok := toFloat(x); ok {
				sch.LastLR = append(sch.LastLR, f)
			}
		}
	}
	s.Scheduler = sch
}

// ParamOf returns the parameter and state key a tensor of the optimizer file
// belongs to.
func (s *State) ParamOf(t *formats.Tensor) (*Param, string, bool) {
	r, ok := s.byTensor[t]
	if !ok {
		return nil, "", false
	}
	return r.p, r.key, true
}

// Label is a parameter's name, or "parameter <id>" when it has none.
func (p *Param) Label() string {
	if p.Name != nil {
		return *p.Name
	}
	return "parameter " + strconv.FormatInt(p.ID, 10)
}

func items(v any) []any {
	switch x := v.(type) {
	case *pickle.List:
		return x.Items
	case pickle.Tuple:
		return x
	}
	return nil
}

func num(d *pickle.Dict, key string) *float64 {
	v, ok := d.Get(key)
	if !ok {
		return nil
	}
	f, ok := toFloat(v)
	if !ok {
		return nil
	}
	return &f
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f, true
	}
	return 0, false
}

// toInt accepts a pickled int (parameter ids, last_epoch).
func toInt(v any) (int64, bool) {
	x, ok := v.(int64)
	return x, ok
}

// scalarTensor reads a one-element tensor's value: torch ≥ 1.12 keeps Adam's
// step as a 0-d float tensor.
func scalarTensor(t *formats.Tensor) (float64, bool) {
	if t == nil || t.Cut || t.File == nil || numel(t.Shape) != 1 {
		return 0, false
	}
	fh, err := formats.OpenSource(t.File.Path, formats.Pread)
	if err != nil {
		return 0, false
	}
	defer fh.Close()
	var out [2]float64
	var n int
	if t.Contiguous() && t.DType.Size() > 0 && t.DType.Size() <= 16 {
		// Its few bytes where they are (a view reader would read a window
		// of 256 KiB for each step of the state).
		raw := make([]byte, t.DType.Size())
		if _, err = fh.ReadAt(raw, t.Offset); err == nil {
			n = inspect.DecodeFloat64(t.DType, raw, out[:1])
		}
	} else {
		n, err = readFloats(formats.NewViewReader(fh, t.File.Size, t), t.DType, out[:1], make([]byte, 16))
	}
	if err != nil || n != 1 {
		return 0, false
	}
	return out[0], true
}

func numel(shape []uint64) uint64 {
	n := uint64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}
