package optim_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/testenv"
	"github.com/ckpt-tool/ckpt/optim"
)

// benchScript writes a Trainer-like directory whose optimizer.pt holds AdamW
// moments of about MB megabytes (torch.save), with its weights and config.
const benchScript = `
import json, os, sys, torch
out, mb = sys.argv[1], float(sys.argv[2])
h = 896
layers = max(1, int(mb * 2**20 / 8 / (4 * h * h * 3)))
names = ["model.embed_tokens.weight"] + [f"model.layers.{i}.mlp.{p}_proj.weight" for i in range(layers) for p in ("gate", "up", "down")]
params = [torch.nn.Parameter(torch.randn(h, h) * 0.02) for _ in names]
opt = torch.optim.AdamW(params, lr=1e-4)
for p in params:
    p.grad = torch.randn_like(p)
opt.step()
torch.save(dict(zip(names, [p.data for p in params])), os.path.join(out, "pytorch_model.bin"))
torch.save(opt.state_dict(), os.path.join(out, "optimizer.pt"))
json.dump({"model_type": "qwen2", "tie_word_embeddings": True}, open(os.path.join(out, "config.json"), "w"))
`

// BenchmarkOptimizerScan scans and checks a checkpoint directory whose
// optimizer.pt holds CKPT_BENCH_OPTIM_MB megabytes of moments (default 64;
// the target is a 0.5B-shaped model, about 4000), reporting the
// optimizer bytes read per second.
func BenchmarkOptimizerScan(b *testing.B) {
	mb := 64.0
	if v := os.Getenv("CKPT_BENCH_OPTIM_MB"); v != "" {
		var err error
		if mb, err = strconv.ParseFloat(v, 64); err != nil {
			b.Fatal(err)
		}
	}
	py := testenv.TorchPython(b)
	dir := b.TempDir()
	if out, err := exec.Command(py, "-c", benchScript, dir, strconv.FormatFloat(mb, 'f', -1, 64)).CombinedOutput(); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	st, err := os.Stat(filepath.Join(dir, "optimizer.pt"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ResetTimer()
	for range b.N {
		c, err := formats.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		s, err := optim.Read(c)
		if err != nil || s == nil {
			b.Fatal(s, err)
		}
		r, err := s.Scan(context.Background(), c, inspect.Options{}) // as scan does: one read
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Check(context.Background(), r, 0); err != nil {
			b.Fatal(err)
		}
		if s.MaxUpdate == nil {
			b.Fatalf("no predicted update (%s)", s.Naming)
		}
	}
}
