package formats_test

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	gopickle "github.com/nlpodyssey/gopickle/pickle"
	gotypes "github.com/nlpodyssey/gopickle/types"

	"github.com/ckpt-tool/ckpt/formats/pickle"
	"github.com/ckpt-tool/ckpt/internal/hostile"
	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// gopickle (nlpodyssey) as a differential oracle: the same data.pkl unpickled
// by it, with stubs for torch's rebuild functions, names the same tensors
// with the same storages, offsets, sizes and strides as formats/pickle.

type oracleTensor struct{ desc string }

type oracleRebuild struct{}

func (oracleRebuild) Call(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("rebuild with %d args", len(args))
	}
	key, _ := args[0].(string)
	return &oracleTensor{fmt.Sprintf("%s@%v size=%v stride=%v", key, args[1], ints(args[2]), ints(args[3]))}, nil
}

func ints(v any) []int64 {
	t, ok := v.(*gotypes.Tuple)
	if !ok {
		return nil
	}
	var out []int64
	for _, e := range *t {
		switch x := e.(type) {
		case int:
			out = append(out, int64(x))
		case int64:
			out = append(out, x)
		}
	}
	return out
}

// oracleTensors walks gopickle's value as pickle.Tensors walks ours.
func oracleTensors(v any, path string, out map[string]string) {
	join := func(k any) string {
		s := fmt.Sprint(k)
		if path == "" {
			return s
		}
		return path + "." + s
	}
	switch x := v.(type) {
	case *oracleTensor:
		name := path
		if name == "" {
			name = "<root>"
		}
		out[name] = x.desc
	case *gotypes.OrderedDict:
		for e := x.List.Front(); e != nil; e = e.Next() {
			en := e.Value.(*gotypes.OrderedDictEntry)
			oracleTensors(en.Value, join(en.Key), out)
		}
	case *gotypes.Dict:
		for _, en := range *x {
			oracleTensors(en.Value, join(en.Key), out)
		}
	case *gotypes.List:
		for i, e := range *x {
			oracleTensors(e, join(i), out)
		}
	case *gotypes.Tuple:
		for i, e := range *x {
			oracleTensors(e, join(i), out)
		}
	}
}

func oracleUnpickle(data []byte) (map[string]string, error) {
	u := gopickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = func(module, name string) (any, error) {
		if module == "torch._utils" && name == "_rebuild_tensor_v2" {
			return oracleRebuild{}, nil
		}
		return gotypes.NewGenericClass(module, name), nil
	}
	u.PersistentLoad = func(pid any) (any, error) {
		t, ok := pid.(*gotypes.Tuple)
		if !ok || t.Len() < 3 {
			return nil, fmt.Errorf("pid %v", pid)
		}
		return t.Get(2), nil
	}
	v, err := u.Load()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	oracleTensors(v, "", out)
	return out, nil
}

func oursUnpickle(data []byte) (map[string]string, error) {
	res, err := pickle.Unpickle(bytes.NewReader(data), 0, pickle.DefaultLimits())
	if err != nil {
		return nil, err
	}
	named, err := pickle.Tensors(res.Value)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range named {
		t := n.Tensor
		out[n.Name] = fmt.Sprintf("%s@%d size=%v stride=%v", t.Storage.Key, t.Offset, t.Size, t.Stride)
	}
	return out, nil
}

func TestUnpicklerAgreesWithGopickle(t *testing.T) {
	pickles := map[string][]byte{"TensorPickle": hostile.TensorPickle(7, "")}
	root := testenv.RealdataTorch(t)
	for _, rel := range []string{
		"PdAlbedo__Recognition_using_Deep_Networks/model.pt",
		"PdAlbedo__Recognition_using_Deep_Networks/optimizer.pt",
		"Sujay510__MiniLLM-Architecture/model.pt",
		"Sujay510__MiniLLM-Architecture/optimizer.pt",
		"Herutriana44__TinyPeLLM/pytorch_model.bin",
		"TheSotti__Lightweight-Fine-Tuning-to-FM/gpt-lora/adapter_model.bin",
		"cogpy__gguf/tinytf/tiny_transformer.pth",
		"Velihh__ML_text/optimizer.pt",
		"mmaitre314__picklescan/tests/data/new_pytorch_model.bin",
	} {
		zr, err := zip.OpenReader(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			if strings.HasSuffix(f.Name, "/data.pkl") {
				rc, err := f.Open()
				if err != nil {
					t.Fatal(err)
				}
				pickles[rel], _ = io.ReadAll(rc)
				rc.Close()
			}
		}
		zr.Close()
	}
	for name, data := range pickles {
		want, err := oracleUnpickle(data)
		if err != nil {
			t.Fatalf("%s: gopickle: %v", name, err)
		}
		got, err := oursUnpickle(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) == 0 || len(got) != len(want) {
			t.Errorf("%s: %d tensors, gopickle %d", name, len(got), len(want))
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: %s is %q, gopickle %q", name, k, got[k], w)
			}
		}
	}
}
