// Package pickle owns the restricted unpickler ckpt reads PyTorch checkpoints
// with: a pickle virtual machine (protocols 0 to 5, as Python and torch write
// them) that never imports or calls anything. Every GLOBAL is looked up in an
// allow-list of what state dicts need; the few callables on it are modelled in
// Go (a tensor rebuild becomes a Tensor record, an OrderedDict a Dict), and
// everything else becomes an inert record plus a finding: an error for code and
// unknown functions, a warning for data classes whose loading needs their
// library. Memo, stack, element count and string sizes are bounded, so a pickle
// bomb is an error, quickly and in bounded memory.
//
// It imports nothing of the project: formats builds torch files on top of it.
package pickle

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// The values a pickle produces. Scalars are Go values: nil (None), bool,
// int64, *big.Int (integers beyond 64 bits), float64, string, Bytes. The
// containers below are pointers so that memo references share them, as in
// Python.

// Bytes is a bytes or bytearray value.
type Bytes []byte

// Tuple is an immutable sequence.
type Tuple []any

// List is a mutable sequence.
type List struct{ Items []any }

// Dict is a dict (or OrderedDict) keeping insertion order.
type Dict struct {
	Keys   []any
	Values []any
	index  map[string]int // key text → position, for keys that are strings or ints
}

// Set is a set or frozenset.
type Set struct{ Items []any }

// Global is a reference to a module attribute, as GLOBAL/STACK_GLOBAL name it.
type Global struct{ Module, Name string }

func (g Global) String() string { return g.Module + "." + g.Name }

// Storage is a torch storage named by a persistent id: its bytes live outside
// the pickle (a zip record, or the legacy file's storage area).
type Storage struct {
	Key      string // record name (zip) or storage key (legacy)
	Class    string // storage class name, e.g. "FloatStorage", "UntypedStorage"
	DType    string // torch dtype name, e.g. "float32" ("uint8" for an untyped storage)
	Location string // device string, e.g. "cpu"
	Numel    int64  // elements of DType
	// A legacy storage view: elements [ViewOffset, ViewOffset+Numel) of the
	// storage ViewOf (its key); "" when not a view.
	ViewOf     string
	ViewOffset int64
}

// Tensor is a torch tensor rebuilt from its storage: offsets, sizes and
// strides are in elements of DType.
type Tensor struct {
	Storage      *Storage
	DType        string // torch dtype name: the storage's, or the one _rebuild_tensor_v3 names
	Offset       int64
	Size         []int64
	Stride       []int64
	RequiresGrad bool
	Parameter    bool // wrapped in torch.nn.Parameter
}

// Object is an instance of a class the unpickler does not model: built by
// NEWOBJ, REDUCE, INST/OBJ or copyreg._reconstructor. Its state (BUILD) and
// items are kept so that tensors inside it are still found.
type Object struct {
	Class  Global
	Args   []any
	State  any
	Items  []any // appended items (a list subclass)
	DItems *Dict // set items (a dict subclass)
}

// Call is the inert result of a call the unpickler refused to make.
type Call struct {
	Func Global
	Args []any
}

// Key renders a dict key as a path element: strings as they are, integers in
// decimal; other keys get a short Python-like rendering.
func Key(k any) string {
	switch v := k.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case *big.Int:
		return v.String()
	case bool:
		if v {
			return "True"
		}
		return "False"
	case nil:
		return "None"
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprintf("<%T>", k)
}

// Get returns the value stored under a string key.
func (d *Dict) Get(key string) (any, bool) {
	if i, ok := d.index["s"+key]; ok {
		return d.Values[i], true
	}
	return nil, false
}

// set stores k → v, replacing an earlier value under an equal simple key.
func (d *Dict) set(k, v any) {
	if d.index == nil {
		d.index = map[string]int{}
	}
	ks, simple := simpleKey(k)
	if simple {
		if i, ok := d.index[ks]; ok {
			d.Values[i] = v
			return
		}
		d.index[ks] = len(d.Keys)
	}
	d.Keys = append(d.Keys, k)
	d.Values = append(d.Values, v)
}

// simpleKey gives a map key for the scalar keys whose equality is plain.
func simpleKey(k any) (string, bool) {
	switch v := k.(type) {
	case string:
		return "s" + v, true
	case int64:
		return "i" + strconv.FormatInt(v, 10), true
	case bool:
		if v {
			return "i1", true
		}
		return "i0", true
	}
	return "", false
}

// Len is the number of entries.
func (d *Dict) Len() int { return len(d.Keys) }

// Repr renders a constant value for a message: strings quoted and escaped,
// containers shortened; at most max bytes.
func Repr(v any, max int) string {
	var b strings.Builder
	repr(&b, v, 0)
	s := b.String()
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

func repr(b *strings.Builder, v any, depth int) {
	if depth > 4 || b.Len() > 512 {
		b.WriteString("…")
		return
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case string:
		b.WriteString(strconv.QuoteToASCII(x))
	case Bytes:
		b.WriteString("b" + strconv.QuoteToASCII(string(x)))
	case int64, float64, bool, *big.Int:
		b.WriteString(Key(x))
	case Tuple:
		b.WriteString("(")
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			repr(b, e, depth+1)
		}
		b.WriteString(")")
	case *List:
		b.WriteString("[")
		for i, e := range x.Items {
			if i > 0 {
				b.WriteString(", ")
			}
			repr(b, e, depth+1)
		}
		b.WriteString("]")
	case Global:
		b.WriteString(x.String())
	case *Call:
		b.WriteString(x.Func.String() + "(…)")
	default:
		fmt.Fprintf(b, "<%T>", v)
	}
}
