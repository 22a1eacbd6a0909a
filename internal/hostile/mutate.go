package hostile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// The mutation campaign: Mutate(dir, seed) writes a small, complete trainer
// checkpoint directory (two shards, an index, config.json, trainer_state.json)
// and then breaks it in one to three seeded ways, chosen among every part a
// hostile or unlucky user can touch: header bytes, length prefixes, data,
// truncation, the index, the side files, shards swapped for directories,
// symlinks, FIFOs or /dev/zero. The same seed gives the same case.

// Shard names of the campaign's checkpoints.
const (
	mutShard1 = "model-00001-of-00002.safetensors"
	mutShard2 = "model-00002-of-00002.safetensors"
	mutIndex  = "model.safetensors.index.json"
)

var mutShards = map[string][]formats.TensorSpec{
	mutShard1: {
		{Name: "model.embed_tokens.weight", DType: formats.F32, Shape: []uint64{16, 8}},
		{Name: "model.layers.0.self_attn.q_proj.weight", DType: formats.F32, Shape: []uint64{8, 8}},
		{Name: "model.layers.0.mlp.up_proj.weight", DType: formats.BF16, Shape: []uint64{16, 8}},
	},
	mutShard2: {
		{Name: "model.layers.1.self_attn.q_proj.weight", DType: formats.F32, Shape: []uint64{8, 8}},
		{Name: "model.norm.weight", DType: formats.F32, Shape: []uint64{8}},
		{Name: "lm_head.weight", DType: formats.F32, Shape: []uint64{16, 8}},
	},
}

const mutConfig = `{"model_type":"llama","vocab_size":16,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":2,` +
	`"num_attention_heads":2,"num_key_value_heads":2,"tie_word_embeddings":false,"torch_dtype":"float32"}`

// WriteCampaignBase writes the campaign's healthy checkpoint into dir (created):
// the GOOD every mutant derives from, for diff, bisect and repair.
func WriteCampaignBase(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	weightMap := map[string]string{}
	var total uint64
	names := []string{mutShard1, mutShard2}
	for k, shard := range names {
		var buf bytes.Buffer
		w, err := formats.NewWriter(&buf, mutShards[shard], map[string]string{"format": "pt"})
		if err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(uint64(k), 99))
		for _, s := range w.Order() {
			n, _ := s.ByteLen()
			total += n
			weightMap[s.Name] = shard
			data := make([]byte, n)
			if s.DType == formats.BF16 {
				for i := 0; i+2 <= len(data); i += 2 {
					binary.LittleEndian.PutUint16(data[i:], uint16(math.Float32bits(float32(rng.NormFloat64()*0.02))>>16))
				}
			} else {
				for i := 0; i+4 <= len(data); i += 4 {
					binary.LittleEndian.PutUint32(data[i:], math.Float32bits(float32(rng.NormFloat64()*0.02)))
				}
			}
			if err := w.WriteTensor(s.Name, bytes.NewReader(data)); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, shard), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	ix, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap})
	if err != nil {
		return err
	}
	files := map[string]string{
		mutIndex:             string(ix),
		"config.json":        mutConfig,
		"trainer_state.json": `{"global_step":100,"epoch":1.0,"max_steps":200,"logging_steps":10,"save_steps":100,"log_history":[` + logHistory() + `]}`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func logHistory() string {
	var parts []string
	for s := 10; s <= 100; s += 10 {
		parts = append(parts, fmt.Sprintf(`{"step":%d,"epoch":%g,"loss":%g,"grad_norm":%g,"learning_rate":0.0001}`, s, float64(s)/100, 3-float64(s)/100, 1+float64(s)/1000))
	}
	return strings.Join(parts, ",")
}

// mutant is a campaign checkpoint being broken.
type mutant struct {
	dir string
	rng *rand.Rand
}

func (m *mutant) path(name string) string { return filepath.Join(m.dir, name) }

// read reads a file of the mutant; a FIFO or a device put there by an earlier
// mutation is an error, not a hang.
func (m *mutant) read(name string) ([]byte, error) { return formats.ReadSideFile(m.path(name), 64<<20) }

func (m *mutant) write(name string, b []byte) error {
	p := m.path(name)
	if err := os.RemoveAll(p); err != nil { // a FIFO or symlink put there by an earlier mutation
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

func (m *mutant) shard() string {
	if m.rng.IntN(2) == 0 {
		return mutShard1
	}
	return mutShard2
}

func (m *mutant) sideFile() string {
	return []string{mutIndex, "config.json", "trainer_state.json"}[m.rng.IntN(3)]
}

// headerOf splits a shard into its header text and the bytes after it; ok is
// false when the shard no longer has a well-formed length prefix.
func headerOf(b []byte) (header, rest []byte, ok bool) {
	if len(b) < 8 {
		return nil, nil, false
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) {
		return nil, nil, false
	}
	return b[8 : 8+n], b[8+n:], true
}

// rewriteHeader applies edit to a shard's header text and fixes the length prefix.
func (m *mutant) rewriteHeader(name string, edit func(h string) string) error {
	b, err := m.read(name)
	if err != nil {
		return nil // an earlier mutation removed it: nothing to edit
	}
	h, rest, ok := headerOf(b)
	if !ok {
		return nil
	}
	nh := edit(string(h))
	out := make([]byte, 8, 8+len(nh)+len(rest))
	binary.LittleEndian.PutUint64(out, uint64(len(nh)))
	return m.write(name, append(append(out, nh...), rest...))
}

// rewriteJSON applies edit to a side file's decoded JSON and writes it back.
func (m *mutant) rewriteJSON(name string, edit func(v map[string]any)) error {
	b, err := m.read(name)
	if err != nil {
		return nil
	}
	var v map[string]any
	if json.Unmarshal(b, &v) != nil || v == nil {
		return nil
	}
	edit(v)
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return m.write(name, out)
}

// mutation is one way of breaking a checkpoint.
type mutation struct {
	name  string
	apply func(m *mutant) error
}

var mutations = []mutation{
	{"flip-header-bit", func(m *mutant) error {
		name := m.shard()
		b, err := m.read(name)
		if err != nil || len(b) < 9 {
			return nil
		}
		h, _, ok := headerOf(b)
		if !ok || len(h) == 0 {
			return nil
		}
		i := 8 + m.rng.IntN(len(h))
		b[i] ^= 1 << m.rng.IntN(8)
		return m.write(name, b)
	}},
	{"length-prefix", func(m *mutant) error {
		name := m.shard()
		b, err := m.read(name)
		if err != nil || len(b) < 8 {
			return nil
		}
		n := binary.LittleEndian.Uint64(b)
		vals := []uint64{0, 1, n - 1, n + 1, n + 8, uint64(len(b)), 100_000_001, 1 << 63, ^uint64(0), m.rng.Uint64()}
		binary.LittleEndian.PutUint64(b, vals[m.rng.IntN(len(vals))])
		return m.write(name, b)
	}},
	{"truncate", func(m *mutant) error {
		name := m.shard()
		b, err := m.read(name)
		if err != nil || len(b) == 0 {
			return nil
		}
		return m.write(name, b[:m.rng.IntN(len(b))])
	}},
	{"append-bytes", func(m *mutant) error {
		name := m.shard()
		b, err := m.read(name)
		if err != nil {
			return nil
		}
		extra := make([]byte, 1+m.rng.IntN(64))
		for i := range extra {
			extra[i] = byte(m.rng.Uint32())
		}
		return m.write(name, append(b, extra...))
	}},
	{"nonfinite-values", func(m *mutant) error {
		name := m.shard()
		b, err := m.read(name)
		if err != nil {
			return nil
		}
		_, rest, ok := headerOf(b)
		if !ok || len(rest) < 4 {
			return nil
		}
		start := len(b) - len(rest)
		bits := []uint32{0x7fc00000, 0x7f800000, 0xff800000, math.Float32bits(3e38)}
		for k := 1 + m.rng.IntN(4); k > 0; k-- {
			i := start + 4*m.rng.IntN(len(rest)/4)
			binary.LittleEndian.PutUint32(b[i:], bits[m.rng.IntN(len(bits))])
		}
		return m.write(name, b)
	}},
	{"header-hostile-strings", func(m *mutant) error {
		evil := []string{"\\u001b[31m", "\\u0000", "\\u202e", "\\n", "\\u200b", "\\ud83d\\ude00"}
		e := evil[m.rng.IntN(len(evil))]
		return m.rewriteHeader(m.shard(), func(h string) string {
			if m.rng.IntN(2) == 0 {
				return strings.Replace(h, `"dtype":"F32"`, `"dtype":"F32`+e+`"`, 1)
			}
			return strings.Replace(h, `"model.`, `"model.`+e, 1)
		})
	}},
	{"header-bom", func(m *mutant) error {
		return m.rewriteHeader(m.shard(), func(h string) string { return "\xef\xbb\xbf" + h })
	}},
	{"header-shape", func(m *mutant) error {
		dims := []string{"4294967296,4294967296", "0", "9", "18446744073709551615", "-1", "8.5"}
		d := dims[m.rng.IntN(len(dims))]
		return m.rewriteHeader(m.shard(), func(h string) string { return strings.Replace(h, `"shape":[8]`, `"shape":[`+d+`]`, 1) })
	}},
	{"header-duplicate-name", func(m *mutant) error {
		return m.rewriteHeader(m.shard(), func(h string) string {
			i := strings.Index(h, `"model.`)
			j := strings.Index(h[i+1:], `"`)
			if i < 0 || j < 0 {
				return h
			}
			name := h[i : i+j+2]
			return strings.Replace(h, `"lm_head.weight"`, name, 1)
		})
	}},
	{"header-metadata", func(m *mutant) error {
		vals := []string{`{"k":1}`, `{"k":"` + strings.Repeat("x", 1<<16) + `"}`, `[]`, `{"k":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`}
		v := vals[m.rng.IntN(len(vals))]
		return m.rewriteHeader(m.shard(), func(h string) string {
			return strings.Replace(h, `"__metadata__":{"format":"pt"}`, `"__metadata__":`+v, 1)
		})
	}},
	{"index-drop-entry", func(m *mutant) error {
		return m.rewriteJSON(mutIndex, func(v map[string]any) {
			if wm, ok := v["weight_map"].(map[string]any); ok {
				keys := slices.Sorted(maps.Keys(wm))
				if len(keys) > 0 {
					delete(wm, keys[m.rng.IntN(len(keys))])
				}
			}
		})
	}},
	{"index-ghosts", func(m *mutant) error {
		n := 1 + m.rng.IntN(3000)
		return m.rewriteJSON(mutIndex, func(v map[string]any) {
			if wm, ok := v["weight_map"].(map[string]any); ok {
				for i := range n {
					wm[fmt.Sprintf("ghost.%d.weight", i)] = mutShard1
				}
			}
		})
	}},
	{"index-wrong-shard", func(m *mutant) error {
		targets := []any{mutShard2, "model-00003-of-00002.safetensors", "../outside.safetensors", "/dev/zero", 7, nil, "", "a/../../b.safetensors"}
		t := targets[m.rng.IntN(len(targets))]
		return m.rewriteJSON(mutIndex, func(v map[string]any) {
			if wm, ok := v["weight_map"].(map[string]any); ok {
				wm["model.embed_tokens.weight"] = t
			}
		})
	}},
	{"index-total-size", func(m *mutant) error {
		vals := []any{0, -1, 1e300, "big", nil}
		x := vals[m.rng.IntN(len(vals))]
		return m.rewriteJSON(mutIndex, func(v map[string]any) { v["metadata"] = map[string]any{"total_size": x} })
	}},
	{"side-file-cut", func(m *mutant) error {
		name := m.sideFile()
		b, err := m.read(name)
		if err != nil || len(b) == 0 {
			return nil
		}
		return m.write(name, b[:m.rng.IntN(len(b))])
	}},
	{"side-file-garbage", func(m *mutant) error {
		texts := []string{"", "null", "[]", `"x"`, "\xef\xbb\xbf{}", "{\"a\":\x00}", strings.Repeat("[", 100000), "NaN",
			"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 10\n"}
		return m.write(m.sideFile(), []byte(texts[m.rng.IntN(len(texts))]))
	}},
	{"config-values", func(m *mutant) error {
		keys := []string{"hidden_size", "vocab_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "tie_word_embeddings"}
		vals := []any{0, -3, 9, 1e308, 1 << 40, "8", true, nil, 2.5}
		k, x := keys[m.rng.IntN(len(keys))], vals[m.rng.IntN(len(vals))]
		return m.rewriteJSON("config.json", func(v map[string]any) { v[k] = x })
	}},
	{"trainer-state-values", func(m *mutant) error {
		texts := []string{
			`{"global_step":100,"log_history":[{"step":10,"loss":NaN,"grad_norm":Infinity}]}`,
			`{"global_step":-5,"log_history":[]}`,
			`{"global_step":1e400,"log_history":"x"}`,
			`{"global_step":100,"log_history":[{"step":"ten","loss":[]}]}`,
		}
		return m.write("trainer_state.json", []byte(texts[m.rng.IntN(len(texts))]))
	}},
	{"shard-missing", func(m *mutant) error { return os.RemoveAll(m.path(m.shard())) }},
	{"shard-directory", func(m *mutant) error {
		p := m.path(m.shard())
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		return os.Mkdir(p, 0o755)
	}},
	{"shard-symlink", func(m *mutant) error {
		targets := []string{mutShard1, mutShard2, "config.json", "nowhere.safetensors", "."}
		p := m.path(m.shard())
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		return os.Symlink(targets[m.rng.IntN(len(targets))], p)
	}},
	{"stray-shard", func(m *mutant) error {
		b, err := m.read(mutShard2)
		if err != nil {
			return nil
		}
		return m.write("model-00003-of-00003.safetensors", b)
	}},
	{"special-file", func(m *mutant) error {
		names := []string{mutShard1, mutShard2, mutIndex, "config.json", "trainer_state.json"}
		return makeSpecial(m.path(names[m.rng.IntN(len(names))]), m.rng.IntN(2) == 0)
	}},
}

// Mutate writes the campaign case of seed under parent: the campaign's healthy
// checkpoint broken in one to three seeded ways (named in Case.Name). The
// directory is named checkpoint-100, as the Trainer names its saves.
func Mutate(parent string, seed uint64) (Case, error) {
	dir := filepath.Join(parent, fmt.Sprintf("seed-%d", seed), "checkpoint-100")
	if err := WriteCampaignBase(dir); err != nil {
		return Case{}, err
	}
	m := &mutant{dir: dir, rng: rand.New(rand.NewPCG(seed, 0x6d7574))}
	var names []string
	for k := 1 + m.rng.IntN(3); k > 0; k-- {
		mu := mutations[m.rng.IntN(len(mutations))]
		if err := mu.apply(m); err != nil {
			return Case{}, fmt.Errorf("seed %d: %s: %w", seed, mu.name, err)
		}
		names = append(names, mu.name)
	}
	return Case{Name: fmt.Sprintf("seed-%d(%s)", seed, strings.Join(names, "+")), Path: dir}, nil
}
