package pickle

import (
	"fmt"
	"strconv"
	"strings"
)

// Named is a tensor found in an unpickled value, named by its key path.
type Named struct {
	Name   string
	Tensor *Tensor
}

// Walk limits: a value nested deeper than maxWalkDepth, or whose containers
// are reached more than maxVisits times through shared references (a DAG
// that doubles at every level), is an error rather than a long walk.
const (
	maxWalkDepth = 256
	maxVisits    = 1 << 18
)

// Tensors lists the tensors in v, in pickle order, each named by the path of
// keys and indexes leading to it joined with "." (state.17.exp_avg_sq). A
// tensor reached by two paths is listed under both. An nn.Module pickled whole
// is flattened as its state_dict would be (its _parameters, _buffers and
// _modules). A tensor at the root is named "<root>".
func Tensors(v any) ([]Named, error) {
	w := &walker{onPath: map[any]bool{}}
	if err := w.walk(v, nil, 0); err != nil {
		return w.out, err
	}
	return w.out, nil
}

type walker struct {
	out    []Named
	visits int
	onPath map[any]bool
}

// join extends a key path. Paths are joined into names only when a tensor is
// found, so walking costs no string building.
func join(path []string, k string) []string { return append(path, k) }

func index(i int) string { return strconv.Itoa(i) }

func (w *walker) walk(v any, path []string, depth int) error {
	if depth > maxWalkDepth {
		return fmt.Errorf("the value is nested more than %d levels deep at %q", maxWalkDepth, strings.Join(path, "."))
	}
	switch x := v.(type) {
	case *Tensor:
		name := strings.Join(path, ".")
		if name == "" {
			name = "<root>"
		}
		w.out = append(w.out, Named{name, x})
		return nil
	case Tuple, *List, *Dict, *Set, *Object:
		w.visits++
		if w.visits > maxVisits {
			return fmt.Errorf("the value reaches its containers more than %d times through shared references (a pickle bomb?)", maxVisits)
		}
	default:
		return nil
	}
	if _, isTuple := v.(Tuple); !isTuple {
		if w.onPath[v] {
			return nil // a container inside itself
		}
		w.onPath[v] = true
		defer delete(w.onPath, v)
	}
	switch x := v.(type) {
	case Tuple:
		for i, e := range x {
			if err := w.walk(e, join(path, index(i)), depth+1); err != nil {
				return err
			}
		}
	case *List:
		for i, e := range x.Items {
			if err := w.walk(e, join(path, index(i)), depth+1); err != nil {
				return err
			}
		}
	case *Set:
		for i, e := range x.Items {
			if err := w.walk(e, join(path, index(i)), depth+1); err != nil {
				return err
			}
		}
	case *Dict:
		for i, k := range x.Keys {
			if err := w.walk(x.Values[i], join(path, Key(k)), depth+1); err != nil {
				return err
			}
		}
	case *Object:
		if st, ok := x.State.(*Dict); ok && isModule(st) {
			return w.module(st, path, depth+1)
		}
		if err := w.walk(x.State, path, depth+1); err != nil {
			return err
		}
		if x.DItems != nil {
			if err := w.walk(x.DItems, path, depth+1); err != nil {
				return err
			}
		}
		for i, e := range x.Items {
			if err := w.walk(e, join(path, index(i)), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func isModule(st *Dict) bool {
	_, p := st.Get("_parameters")
	_, m := st.Get("_modules")
	return p && m
}

// module names an nn.Module's tensors as its state_dict does.
func (w *walker) module(st *Dict, path []string, depth int) error {
	if depth > maxWalkDepth {
		return fmt.Errorf("modules nested more than %d levels deep at %q", maxWalkDepth, strings.Join(path, "."))
	}
	for _, field := range []string{"_parameters", "_buffers"} {
		if d, ok := st.Get(field); ok {
			if dd, ok := d.(*Dict); ok {
				for i, k := range dd.Keys {
					if err := w.walk(dd.Values[i], join(path, Key(k)), depth+1); err != nil {
						return err
					}
				}
			}
		}
	}
	mods, _ := st.Get("_modules")
	dd, ok := mods.(*Dict)
	if !ok {
		return nil
	}
	for i, k := range dd.Keys {
		sub := join(path, Key(k))
		if o, ok := dd.Values[i].(*Object); ok {
			if s, ok := o.State.(*Dict); ok && isModule(s) {
				if w.onPath[o] {
					continue
				}
				w.onPath[o] = true
				err := w.module(s, sub, depth+1)
				delete(w.onPath, o)
				if err != nil {
					return err
				}
				continue
			}
		}
		if err := w.walk(dd.Values[i], sub, depth+1); err != nil {
			return err
		}
	}
	return nil
}
