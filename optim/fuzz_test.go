package optim_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/optim"
)

// FuzzRead feeds arbitrary bytes as an optimizer.pt, seeded with the real
// optimizer files of the shared corpus when present: reading the state,
// naming, and every check end without a panic, every parameter's shape is
// that of one of its state tensors, and the one-read scan (State.Scan, on
// two workers) predicts what the two-read path predicts, to the bit.
func FuzzRead(f *testing.F) {
	for _, rel := range []string{"Velihh__ML_text/optimizer.pt", "PdAlbedo__Recognition_using_Deep_Networks/optimizer.pt"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "shared", "realdata-torch", rel)); err == nil {
			f.Add(b)
		}
	}
	// A bare protocol-2 pickle of {'state': {}, 'param_groups': [{'params': [0]}]}.
	f.Add([]byte("\x80\x02}(U\x05state}U\x0cparam_groups]}U\x06params]K\x00asau."))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "optimizer.pt")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := formats.Open(p)
		if err != nil {
			return
		}
		s, err := optim.Read(c)
		if err != nil || s == nil {
			return
		}
		r, err := inspect.Scan(context.Background(), c, inspect.Options{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Check(context.Background(), r, 0); err != nil {
			return // a tensor that cannot be read is an error, not a panic
		}
		if s1, err := optim.Read(c); err == nil && s1 != nil {
			r1, err := s1.Scan(context.Background(), c, inspect.Options{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s1.Check(context.Background(), r1, 0); err == nil {
				if g, w := mustJSON(s1), mustJSON(s); !bytes.Equal(g, w) {
					t.Fatalf("the one-read scan predicts\n%s\nthe two-read path\n%s", g, w)
				}
			}
		}
		for _, prm := range s.Params {
			if prm.Shape == nil {
				continue
			}
			ok := false
			for _, st := range prm.State {
				if st.Tensor != nil && len(st.Tensor.Shape) == len(prm.Shape) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("param %d: shape %v is none of its state tensors'", prm.ID, prm.Shape)
			}
		}
	})
}
