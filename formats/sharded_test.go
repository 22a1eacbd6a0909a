package formats_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// shardedDir writes a two-shard checkpoint: shard name → tensors (U8 [4] each),
// and an index. weightMap overrides the index's weight_map when non-nil;
// totalSize overrides metadata.total_size when non-nil.
type shardedSpec struct {
	shards    map[string][]string
	weightMap map[string]string
	totalSize any
	indexName string
}

func (s shardedSpec) write(t *testing.T, dir string) string {
	t.Helper()
	wm := map[string]string{}
	total := 0
	for shard, names := range s.shards {
		var specs []formats.TensorSpec
		for _, n := range names {
			specs = append(specs, formats.TensorSpec{Name: n, DType: formats.U8, Shape: []uint64{4}})
			wm[n] = shard
			total += 4
		}
		writeFile(t, dir, shard, encode(t, specs, nil, map[string]string{"format": "pt"}))
	}
	if s.weightMap != nil {
		wm = s.weightMap
	}
	var ts any = total
	if s.totalSize != nil {
		ts = s.totalSize
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": ts}, "weight_map": wm})
	name := s.indexName
	if name == "" {
		name = "model.safetensors.index.json"
	}
	writeFile(t, dir, name, idx)
	return dir
}

func twoShards() map[string][]string {
	return map[string][]string{
		"model-00001-of-00002.safetensors": {"model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight"},
		"model-00002-of-00002.safetensors": {"model.layers.1.mlp.up_proj.weight", "lm_head.weight"},
	}
}

func mustOpen(t *testing.T, path string) *formats.Checkpoint {
	t.Helper()
	c, err := formats.Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return c
}

func TestShardedHealthy(t *testing.T) {
	dir := shardedSpec{shards: twoShards()}.write(t, t.TempDir())
	c := mustOpen(t, dir)
	if c.Layout != formats.LayoutSharded || c.Index == nil {
		t.Fatalf("layout %v, index %v", c.Layout, c.Index)
	}
	if ps := c.AllProblems(); len(ps) != 0 {
		t.Fatalf("problems on a healthy checkpoint: %v", ps)
	}
	if len(c.Files) != 2 || len(c.Tensors) != 4 {
		t.Fatalf("%d files, %d tensors", len(c.Files), len(c.Tensors))
	}
	for _, shard := range []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		for _, name := range twoShards()[shard] {
			tn := c.Tensor(name)
			if tn == nil || tn.File.Name != shard {
				t.Errorf("%s: %+v", name, tn)
			}
		}
	}
	// total_size written as a float, as some tools do, still matches.
	dir = shardedSpec{shards: twoShards(), totalSize: 16.0}.write(t, t.TempDir())
	if ps := mustOpen(t, dir).AllProblems(); len(ps) != 0 {
		t.Errorf("float total_size: %v", ps)
	}
}

func TestShardedCrossChecks(t *testing.T) {
	s1, s2 := "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	full := map[string]string{
		"model.embed_tokens.weight": s1, "model.layers.0.mlp.up_proj.weight": s1,
		"model.layers.1.mlp.up_proj.weight": s2, "lm_head.weight": s2,
	}
	with := func(edit func(m map[string]string)) map[string]string {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		edit(m)
		return m
	}
	cases := []struct {
		name   string
		spec   shardedSpec
		extra  func(t *testing.T, dir string)
		kind   error
		sev    formats.Severity
		tensor string
		more   bool // other problems follow from this one
	}{
		{name: "tensor listed but absent from its shard",
			spec: shardedSpec{weightMap: with(func(m map[string]string) { m["model.norm.weight"] = s2 }), totalSize: 16},
			kind: formats.ErrNotInShard, sev: formats.SevError, tensor: "model.norm.weight"},
		{name: "tensor in a shard but unlisted",
			spec: shardedSpec{weightMap: with(func(m map[string]string) { delete(m, "lm_head.weight") })},
			kind: formats.ErrUnlistedTensor, sev: formats.SevWarning, tensor: "lm_head.weight"},
		{name: "tensor in the wrong shard",
			spec: shardedSpec{weightMap: with(func(m map[string]string) { m["lm_head.weight"] = s1 })},
			kind: formats.ErrWrongShard, sev: formats.SevError, tensor: "lm_head.weight"},
		{name: "missing shard",
			spec:  shardedSpec{},
			extra: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, s2)) },
			kind:  formats.ErrMissingShard, sev: formats.SevError},
		{name: "stray shard",
			spec: shardedSpec{},
			extra: func(t *testing.T, dir string) {
				writeFile(t, dir, "model-00003-of-00003.safetensors", encode(t, []formats.TensorSpec{{Name: "x", DType: formats.U8, Shape: []uint64{1}}}, nil, nil))
			},
			kind: formats.ErrStrayShard, sev: formats.SevWarning},
		{name: "total_size mismatch",
			spec: shardedSpec{totalSize: 17},
			kind: formats.ErrTotalSize, sev: formats.SevWarning},
		{name: "empty weight_map",
			spec: shardedSpec{weightMap: map[string]string{}},
			kind: formats.ErrIndex, sev: formats.SevError, more: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.spec.shards = twoShards()
			c.spec.write(t, dir)
			if c.extra != nil {
				c.extra(t, dir)
			}
			ck := mustOpen(t, dir)
			ps := ck.AllProblems()
			p := findProblem(ps, c.kind)
			if p == nil {
				t.Fatalf("no %v among %v", c.kind, ps)
			}
			if p.Severity != c.sev || p.Err.Tensor != c.tensor {
				t.Errorf("severity %s tensor %q, want %s %q", p.Severity, p.Err.Tensor, c.sev, c.tensor)
			}
			if len(ps) != 1 && !c.more {
				t.Errorf("want exactly one problem, got %v", ps)
			}
			if !errors.Is(p.Err, formats.ErrIndex) && !errors.Is(p.Err, formats.ErrMissingShard) {
				t.Errorf("%v is neither an index nor a missing-shard problem", p.Err)
			}
		})
	}
}

func TestShardNamesMustStayInside(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(root, "outside.safetensors")
	writeFile(t, root, "outside.safetensors", encode(t, []formats.TensorSpec{{Name: "evil", DType: formats.U8, Shape: []uint64{4}}}, nil, nil))
	dir := filepath.Join(root, "ckpt")
	cases := map[string]func(t *testing.T) string{
		"absolute":       func(t *testing.T) string { return outside },
		"dot-dot":        func(t *testing.T) string { return "../outside.safetensors" },
		"dot-dot inside": func(t *testing.T) string { return "sub/../../outside.safetensors" },
		"backslash dots": func(t *testing.T) string { return `..\outside.safetensors` },
		"symlink escapes": func(t *testing.T) string {
			os.Symlink(outside, filepath.Join(dir, "link.safetensors"))
			return "link.safetensors"
		},
		"dir symlink escapes": func(t *testing.T) string {
			os.Symlink(root, filepath.Join(dir, "up"))
			return "up/outside.safetensors"
		},
	}
	for name, shardName := range cases {
		t.Run(name, func(t *testing.T) {
			os.RemoveAll(dir)
			os.MkdirAll(dir, 0o755)
			sn := shardName(t)
			shardedSpec{
				shards:    map[string][]string{"model-00001-of-00001.safetensors": {"a"}},
				weightMap: map[string]string{"a": "model-00001-of-00001.safetensors", "evil": sn},
			}.write(t, dir)
			c := mustOpen(t, dir)
			if p := findProblem(c.AllProblems(), formats.ErrUnsafePath); p == nil || p.Severity != formats.SevError {
				t.Fatalf("no unsafe-path error among %v", c.AllProblems())
			}
			for _, f := range c.Files {
				if f.Name == sn {
					t.Errorf("the escaping shard %q was opened", sn)
				}
			}
			if c.Tensor("evil") != nil {
				t.Error("a tensor from outside the checkpoint was listed")
			}
		})
	}
	// A symlink that stays inside is fine.
	os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "blobs"), 0o755)
	writeFile(t, dir, "blobs/abc", encode(t, []formats.TensorSpec{{Name: "a", DType: formats.U8, Shape: []uint64{4}}}, nil, nil))
	os.Symlink(filepath.Join("blobs", "abc"), filepath.Join(dir, "model-00001-of-00001.safetensors"))
	idx, _ := json.Marshal(map[string]any{"weight_map": map[string]string{"a": "model-00001-of-00001.safetensors"}})
	writeFile(t, dir, "model.safetensors.index.json", idx)
	if ps := mustOpen(t, dir).AllProblems(); len(ps) != 0 {
		t.Errorf("inside symlink: %v", ps)
	}
}

func TestSafeJoin(t *testing.T) {
	dir := t.TempDir()
	// Any ".." element is refused, even one that would stay inside.
	for _, bad := range []string{"", "/etc/passwd", "..", "../x", "a/../../x", `a\..\..\x`, "a/../..", "./../x", "a/../x.safetensors"} {
		if _, err := formats.SafeJoin(dir, bad); !errors.Is(err, formats.ErrUnsafePath) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for _, good := range []string{"x.safetensors", "sub/x.safetensors", "./x.safetensors"} {
		p, err := formats.SafeJoin(dir, good)
		if err != nil || filepath.Dir(filepath.Clean(p)) == filepath.Dir(dir) {
			t.Errorf("%q: %q %v", good, p, err)
		}
	}
}

func TestIndexVariantsAndAdapters(t *testing.T) {
	t.Run("fp16 variant index alone", func(t *testing.T) {
		dir := t.TempDir()
		shardedSpec{shards: map[string][]string{
			"model.fp16-00001-of-00002.safetensors": {"a", "b"},
			"model.fp16-00002-of-00002.safetensors": {"c"},
		}, indexName: "model.safetensors.index.fp16.json"}.write(t, dir)
		c := mustOpen(t, dir)
		if c.Layout != formats.LayoutSharded || len(c.Tensors) != 3 {
			t.Fatalf("layout %v, %d tensors", c.Layout, len(c.Tensors))
		}
		if ps := c.AllProblems(); len(ps) != 0 {
			t.Errorf("problems: %v", ps)
		}
	})
	t.Run("canonical and fp16 side by side", func(t *testing.T) {
		dir := t.TempDir()
		shardedSpec{shards: twoShards()}.write(t, dir)
		shardedSpec{shards: map[string][]string{
			"model.fp16-00001-of-00001.safetensors": {"model.embed_tokens.weight"},
		}, indexName: "model.safetensors.index.fp16.json"}.write(t, dir)
		c := mustOpen(t, dir)
		if filepath.Base(c.Index.Path) != "model.safetensors.index.json" {
			t.Errorf("index %s, want the canonical one", c.Index.Path)
		}
		if ps := c.AllProblems(); len(ps) != 0 {
			t.Errorf("the variant's shards are not strays: %v", ps)
		}
	})
	t.Run("PEFT adapter", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "adapter_model.safetensors", encode(t, []formats.TensorSpec{
			{Name: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", DType: formats.F32, Shape: []uint64{8, 64}},
			{Name: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", DType: formats.F32, Shape: []uint64{64, 8}},
		}, nil, map[string]string{"format": "pt"}))
		writeFile(t, dir, "adapter_config.json", []byte(`{"r":8,"peft_type":"LORA"}`))
		writeFile(t, dir, "config.json", []byte(`{"hidden_size":4096,"vocab_size":10,"num_hidden_layers":99}`))
		c := mustOpen(t, dir)
		if c.Layout != formats.LayoutAdapter || len(c.Tensors) != 2 {
			t.Fatalf("layout %v, %d tensors", c.Layout, len(c.Tensors))
		}
		if ps := c.AllProblems(); len(ps) != 0 {
			t.Errorf("problems: %v", ps)
		}
	})
	t.Run("single file, directory of files, nothing", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "model.safetensors", encode(t, []formats.TensorSpec{{Name: "a", DType: formats.U8, Shape: []uint64{1}}}, nil, nil))
		if c := mustOpen(t, dir); c.Layout != formats.LayoutSingle || len(c.Tensors) != 1 {
			t.Errorf("single: %v %d", c.Layout, len(c.Tensors))
		}
		if c := mustOpen(t, filepath.Join(dir, "model.safetensors")); c.Layout != formats.LayoutFile || len(c.Tensors) != 1 {
			t.Errorf("file: %v %d", c.Layout, len(c.Tensors))
		}
		dir2 := filepath.Join(t.TempDir(), "run[1]") // glob characters in the path itself
		writeFile(t, dir2, "epoch_1.safetensors", encode(t, []formats.TensorSpec{{Name: "a", DType: formats.U8, Shape: []uint64{1}}}, nil, nil))
		writeFile(t, dir2, "epoch_2.safetensors", encode(t, []formats.TensorSpec{{Name: "a", DType: formats.U8, Shape: []uint64{1}}}, nil, nil))
		c := mustOpen(t, dir2)
		var names []string
		for _, f := range c.Files {
			names = append(names, f.Name)
		}
		if c.Layout != formats.LayoutFiles || !sort.StringsAreSorted(names) || len(names) != 2 {
			t.Errorf("files: %v %v", c.Layout, names)
		}
		_, err := formats.Open(t.TempDir())
		if !errors.Is(err, formats.ErrNoWeights) {
			t.Errorf("empty dir: %v", err)
		}
		if _, err := formats.Open(filepath.Join(dir, "absent")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing path: %v", err)
		}
	})
}

func TestBrokenIndexIsAProblemNotAFailure(t *testing.T) {
	cases := map[string]struct {
		body string
		kind error
	}{
		"not JSON":         {`{"weight_map": {`, formats.ErrIndex},
		"no weight_map":    {`{"metadata": {}}`, formats.ErrIndex},
		"trailing data":    {`{"weight_map": {"a": "m.safetensors"}} x`, formats.ErrIndex},
		"non-string shard": {`{"weight_map": {"a": 3}}`, formats.ErrIndex},
		"LFS pointer":      {"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 100\n", formats.ErrLFSPointer},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "model.safetensors.index.json", []byte(c.body))
			ck := mustOpen(t, dir)
			if p := findProblem(ck.AllProblems(), c.kind); p == nil || p.Severity != formats.SevError {
				t.Fatalf("problems %v", ck.AllProblems())
			}
		})
	}
}

func TestParseIndex(t *testing.T) {
	ix, err := formats.ParseIndex("i.json", []byte(`{"metadata":{"total_size":1.2e3,"total_parameters":600,"extra":[1]},
		"weight_map":{"b":"s2.safetensors","a":"s1.safetensors","c":"s1.safetensors"}}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ts, ok := ix.TotalSize(); !ok || ts != 1200 {
		t.Errorf("total_size %v %v", ts, ok)
	}
	if got := ix.Shards(); len(got) != 2 || got[0] != "s1.safetensors" || got[1] != "s2.safetensors" {
		t.Errorf("shards %v", got)
	}
	// metadata that is not an object is tolerated (only total_size is used).
	ix, err = formats.ParseIndex("i.json", []byte(`{"metadata":"v1","weight_map":{"a":"s.safetensors"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ix.TotalSize(); ok || len(ix.WeightMap) != 1 {
		t.Errorf("metadata string: %v %v", ix.Metadata, ix.WeightMap)
	}
	for _, bad := range []string{``, `null`, `[]`, `{"weight_map":[]}`, `{"weight_map":{"a":null}}`, `{"weight_map":{}}{}`} {
		if _, err := formats.ParseIndex("i.json", []byte(bad)); !errors.Is(err, formats.ErrIndex) {
			t.Errorf("%q: got %v, want ErrIndex", bad, err)
		}
	}
}
