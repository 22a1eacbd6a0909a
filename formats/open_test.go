//go:build unix

package formats_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/formats"
)

// Opening a checkpoint reads headers only. Two shards declare 64 GiB of tensor
// data each, present as sparse files: reading even a fraction of it would take
// far longer than the bound below, while the headers take microseconds.
func TestOpenReadsHeadersOnly(t *testing.T) {
	dir := t.TempDir()
	const perShard = 64 << 30
	wm := map[string]string{}
	for i, shard := range []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		specs := []formats.TensorSpec{
			{Name: []string{"model.embed_tokens.weight", "lm_head.weight"}[i], DType: formats.BF16, Shape: []uint64{perShard / 2 / 4096, 4096}},
		}
		p := filepath.Join(dir, shard)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w, err := formats.NewWriter(f, specs, map[string]string{"format": "pt"})
		if err != nil {
			t.Fatal(err)
		}
		end, _ := f.Seek(0, 1)
		f.Close()
		if err := os.Truncate(p, end+int64(w.DataLen())); err != nil {
			t.Skipf("cannot make a %d GiB sparse file here: %v", perShard>>30, err)
		}
		if st, err := os.Stat(p); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Blocks*512 > 1<<20 {
				t.Skipf("the file system does not keep %s sparse", p)
			}
		}
		wm[specs[0].Name] = shard
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 2 * perShard}, "weight_map": wm})
	writeFile(t, dir, "model.safetensors.index.json", idx)

	start := time.Now()
	c, err := formats.Open(dir)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if ps := c.AllProblems(); len(ps) != 0 {
		t.Fatalf("problems: %v", ps)
	}
	if c.TotalBytes() < 2*perShard || len(c.Tensors) != 2 {
		t.Fatalf("%d bytes, %d tensors", c.TotalBytes(), len(c.Tensors))
	}
	if elapsed > 2*time.Second {
		t.Errorf("Open took %v for a 128 GiB checkpoint: it is reading tensor data", elapsed)
	}
	t.Logf("opened a %d GiB sharded checkpoint in %v", c.TotalBytes()>>30, elapsed)
}
