package pickle

import (
	"math"
	"math/big"
	"strings"
)

// maxApplyDepth bounds nested modelled calls (_rebuild_from_type_v2 calls
// the function it is given).
const maxApplyDepth = 8

// apply models a call of f with args (REDUCE, NEWOBJ, INST, OBJ). Nothing is
// ever called: allow-listed callables are modelled, data classes become
// Objects and everything else an inert Call.
func (m *machine) apply(f any, args []any) error {
	v, err := m.model(f, args, 0)
	if err != nil {
		return err
	}
	return m.push(v)
}

func (m *machine) model(f any, args []any, depth int) (any, error) {
	if depth > maxApplyDepth {
		return nil, m.limit("calls nested more than %d deep", maxApplyDepth)
	}
	g, ok := f.(Global)
	if !ok {
		// Calling the result of a call or an instance: code by definition.
		callee := Global{Module: "<value>", Name: typeName(f)}
		if c, ok := f.(*Call); ok {
			callee = Global{Module: "<result of " + c.Func.String() + ">", Name: "__call__"}
		}
		key := callee.String()
		if _, seen := m.useIdx[key]; !seen {
			m.useIdx[key] = len(m.uses)
			m.uses = append(m.uses, Use{Global: callee, Verdict: Code, Offset: m.base + m.op})
		}
		m.called(callee, args)
		return &Call{Func: callee, Args: args}, nil
	}
	m.called(g, args)
	switch Classify(g) {
	case Code:
		return &Call{Func: g, Args: args}, nil
	case Data:
		return &Object{Class: g, Args: args}, nil
	}
	kind, _ := lookup(g)
	switch kind {
	case bOrderedDict, bDefaultDict:
		d := &Dict{}
		if kind == bOrderedDict && len(args) == 1 {
			for _, p := range items(args[0]) {
				if kv, ok := p.(Tuple); ok && len(kv) == 2 {
					d.set(kv[0], kv[1])
				}
			}
		}
		return d, nil
	case bRebuildTensor, bRebuildTensorV2, bRebuildTensorV3:
		return m.rebuildTensor(kind, args)
	case bRebuildParameter, bRebuildParameterState, bParameter:
		if len(args) == 0 {
			return &Object{Class: g}, nil
		}
		if t, ok := args[0].(*Tensor); ok {
			t.Parameter = true
			if len(args) > 1 {
				t.RequiresGrad, _ = args[1].(bool)
			}
			return t, nil
		}
		return args[0], nil
	case bRebuildFromType:
		// _rebuild_from_type_v2(func, new_type, args, state): func(*args).
		if len(args) < 3 {
			return nil, m.fail("%s with %d arguments", g, len(args))
		}
		inner, ok := args[2].(Tuple)
		if !ok {
			return nil, m.fail("%s: its arguments are a %s", g, typeName(args[2]))
		}
		if cls, ok := args[1].(Global); ok && Classify(cls) != Allowed {
			return &Object{Class: cls, Args: args}, nil
		}
		return m.model(args[0], inner, depth+1)
	case bSet, bFrozenSet:
		s := &Set{}
		if len(args) > 0 {
			s.Items = append(s.Items, items(args[0])...)
		}
		return s, nil
	case bSize:
		if len(args) > 0 {
			return Tuple(items(args[0])), nil
		}
		return Tuple{}, nil
	case bCodecsEncode:
		if len(args) >= 1 {
			if s, ok := args[0].(string); ok {
				enc := ""
				if len(args) > 1 {
					enc, _ = args[1].(string)
				}
				if strings.EqualFold(strings.ReplaceAll(enc, "-", ""), "latin1") {
					b := make(Bytes, 0, len(s))
					for _, r := range s {
						b = append(b, byte(r))
					}
					return b, nil
				}
				return Bytes(s), nil
			}
		}
		return Bytes{}, nil
	case bByteArray:
		if len(args) > 0 {
			if b, ok := args[0].(Bytes); ok {
				return append(Bytes(nil), b...), nil
			}
		}
		return Bytes{}, nil
	case bGetLayout:
		if len(args) > 0 {
			return args[0], nil
		}
		return nil, nil
	case bReconstructor:
		// copyreg._reconstructor(cls, base, state): an instance of cls.
		if len(args) >= 1 {
			if cls, ok := args[0].(Global); ok {
				return &Object{Class: cls, Args: args[1:]}, nil
			}
		}
		return &Object{Class: g, Args: args}, nil
	}
	return &Object{Class: g, Args: args}, nil
}

// items lists the elements of a sequence value.
func items(v any) []any {
	switch x := v.(type) {
	case Tuple:
		return x
	case *List:
		return x.Items
	case *Set:
		return x.Items
	}
	return nil
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func (m *machine) ints(v any, what string) ([]int64, error) {
	seq, ok := v.(Tuple)
	if !ok {
		if l, isList := v.(*List); isList {
			seq, ok = l.Items, true
		}
	}
	if !ok {
		return nil, m.fail("tensor %s is a %s, not a tuple of integers", what, typeName(v))
	}
	if len(seq) > 64 {
		return nil, m.fail("tensor %s has %d dimensions", what, len(seq))
	}
	out := make([]int64, len(seq))
	for i, e := range seq {
		n, ok := asInt(e)
		if !ok || n < 0 {
			return nil, m.fail("tensor %s element %d is %s", what, i, Repr(e, 40))
		}
		out[i] = n
	}
	return out, nil
}

// rebuildTensor models torch._utils._rebuild_tensor{,_v2,_v3}(storage,
// storage_offset, size, stride, ...).
func (m *machine) rebuildTensor(kind builtin, args []any) (any, error) {
	if len(args) < 4 {
		return nil, m.fail("tensor rebuild with %d arguments", len(args))
	}
	st, ok := args[0].(*Storage)
	if !ok {
		return nil, m.fail("tensor rebuild from a %s, not a storage", typeName(args[0]))
	}
	off, ok := asInt(args[1])
	if !ok || off < 0 {
		return nil, m.fail("tensor storage offset is %s", Repr(args[1], 40))
	}
	size, err := m.ints(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := m.ints(args[3], "stride")
	if err != nil {
		return nil, err
	}
	if len(stride) != len(size) {
		return nil, m.fail("tensor has %d sizes but %d strides", len(size), len(stride))
	}
	t := &Tensor{Storage: st, DType: st.DType, Offset: off, Size: size, Stride: stride}
	if len(args) > 4 {
		t.RequiresGrad, _ = args[4].(bool)
	}
	if kind == bRebuildTensorV3 {
		if len(args) < 7 {
			return nil, m.fail("_rebuild_tensor_v3 with %d arguments", len(args))
		}
		g, ok := args[6].(Global)
		name, known := torchDTypes[g.Name]
		if !ok || g.Module != "torch" || !known {
			return nil, m.fail("_rebuild_tensor_v3 dtype is %s", Repr(args[6], 60))
		}
		t.DType = name
	}
	return t, nil
}

// storage builds the Storage a persistent id names:
// ('storage', storage_class, key, location, numel[, view_metadata]).
func (m *machine) storage(pid any) (*Storage, error) {
	t, ok := pid.(Tuple)
	if !ok || len(t) < 5 || t[0] != "storage" {
		return nil, m.fail("persistent id %s is not a torch storage", Repr(pid, 80))
	}
	cls, ok := t[1].(Global)
	if !ok {
		return nil, m.fail("storage type is a %s", typeName(t[1]))
	}
	dt, known := storageDTypes[cls.Name]
	if !known || (cls.Module != "torch" && cls.Module != "torch.storage") {
		return nil, m.fail("unknown storage type %s", cls)
	}
	var key string
	switch k := t[2].(type) {
	case string:
		key = k
	case int64:
		key = Key(k)
	default:
		return nil, m.fail("storage key is a %s", typeName(t[2]))
	}
	loc, _ := t[3].(string)
	if d, ok := t[3].(*Object); ok && len(d.Args) > 0 { // torch.device('cpu')
		loc, _ = d.Args[0].(string)
	}
	numel, ok := asInt(t[4])
	if !ok || numel < 0 {
		if b, isBig := t[4].(*big.Int); !isBig || b.Sign() < 0 {
			return nil, m.fail("storage %q size is %s", key, Repr(t[4], 40))
		}
		numel = math.MaxInt64
	}
	s := &Storage{Key: key, Class: cls.Name, DType: dt, Location: loc, Numel: numel}
	if len(t) > 5 && t[5] != nil {
		vm, ok := t[5].(Tuple)
		if !ok || len(vm) < 3 {
			return nil, m.fail("storage %q view metadata is %s", key, Repr(t[5], 60))
		}
		vk, ok1 := vm[0].(string)
		vo, ok2 := asInt(vm[1])
		vs, ok3 := asInt(vm[2])
		if !ok1 || !ok2 || !ok3 || vo < 0 || vs < 0 {
			return nil, m.fail("storage %q view metadata is %s", key, Repr(t[5], 60))
		}
		// The view (its own key) is elements [vo, vo+vs) of the root storage.
		s = &Storage{Key: vk, Class: cls.Name, DType: dt, Location: loc, Numel: vs, ViewOf: key, ViewOffset: vo}
	}
	return s, nil
}
