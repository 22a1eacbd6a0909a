package pickle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	gopickle "github.com/nlpodyssey/gopickle/pickle"
	gotypes "github.com/nlpodyssey/gopickle/types"
)

// statePickle is a data.pkl as torch.save writes it for n tensors: an
// OrderedDict of _rebuild_tensor_v2 calls, globals memoized once.
func statePickle(n int) []byte {
	var b bytes.Buffer
	str := func(s string) {
		b.WriteByte('X')
		var l [4]byte
		binary.LittleEndian.PutUint32(l[:], uint32(len(s)))
		b.Write(l[:])
		b.WriteString(s)
	}
	b.WriteString("\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(")
	for i := range n {
		str(fmt.Sprintf("model.layers.%d.mlp.down_proj.weight", i))
		if i == 0 {
			b.WriteString("ctorch._utils\n_rebuild_tensor_v2\nq\x02")
		} else {
			b.WriteString("h\x02")
		}
		b.WriteString("((")
		str("storage")
		if i == 0 {
			b.WriteString("ctorch\nBFloat16Storage\nq\x03")
		} else {
			b.WriteString("h\x03")
		}
		str(fmt.Sprint(i))
		str("cpu")
		b.WriteString("J\x00\x00\x10\x00tQK\x00M\x00\x04M\x00\x04\x86M\x00\x04K\x01\x86\x89h\x00)RtR")
	}
	b.WriteString("u.")
	return b.Bytes()
}

func TestStatePickle(t *testing.T) {
	res, err := Unpickle(bytes.NewReader(statePickle(1000)), 0, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	named, err := Tensors(res.Value)
	if err != nil || len(named) != 1000 || named[999].Name != "model.layers.999.mlp.down_proj.weight" || named[5].Tensor.DType != "bfloat16" {
		t.Fatalf("%d tensors, %v", len(named), err)
	}
}

// Unpickling a 1,000-tensor data.pkl (the budget: < 20 ms).
func BenchmarkUnpickle1000Tensors(b *testing.B) {
	data := statePickle(1000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		res, err := Unpickle(bytes.NewReader(data), 0, DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Tensors(res.Value); err != nil {
			b.Fatal(err)
		}
	}
}

// The same data.pkl unpickled by gopickle (nlpodyssey), a peer in the same
// run (bench/torch.sh sets the two against each other): torch's globals as
// inert classes, a rebuild stub that keeps its arguments, storages by key. It
// checks nothing and builds generic objects, so it does less than Unpickle.
func BenchmarkUnpickle1000TensorsGopickle(b *testing.B) {
	data := statePickle(1000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		u := gopickle.NewUnpickler(bytes.NewReader(data))
		u.FindClass = func(module, name string) (any, error) {
			if module == "torch._utils" && name == "_rebuild_tensor_v2" {
				return rebuildStub{}, nil
			}
			return gotypes.NewGenericClass(module, name), nil
		}
		u.PersistentLoad = func(pid any) (any, error) { return pid, nil }
		v, err := u.Load()
		if err != nil {
			b.Fatal(err)
		}
		if d, ok := v.(*gotypes.OrderedDict); !ok || d.Len() != 1000 {
			b.Fatalf("gopickle built %T", v)
		}
	}
}

type rebuildStub struct{}

func (rebuildStub) Call(args ...any) (any, error) { return args, nil }
