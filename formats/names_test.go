package formats

import (
	"strings"
	"testing"
)

func TestLayerAndRole(t *testing.T) {
	cases := []struct {
		name, layer string
		index       int
		role        string
	}{
		{"model.layers.3.mlp.down_proj.weight", "model.layers.3", 3, "model.layers.*.mlp.down_proj.weight"},
		{"model.layers.17.mlp.down_proj.weight", "model.layers.17", 17, "model.layers.*.mlp.down_proj.weight"},
		{"encoder.block.0.layer.1.wi.weight", "encoder.block.0", 0, "encoder.block.*.layer.1.wi.weight"},
		{"transformer.h.11.attn.c_attn.weight", "transformer.h.11", 11, "transformer.h.*.attn.c_attn.weight"},
		{"model.layers.3.block_sparse_moe.experts.5.w1.weight", "model.layers.3", 3, "model.layers.*.block_sparse_moe.experts.5.w1.weight"},
		{"base_model.model.model.layers.2.self_attn.q_proj.lora_A.w", "base_model.model.model.layers.2", 2, "base_model.model.model.layers.*.self_attn.q_proj.lora_A.w"},
		// GGUF names.
		{"blk.0.attn_q.weight", "blk.0", 0, "blk.*.attn_q.weight"},
		{"blk.31.ffn_down.weight", "blk.31", 31, "blk.*.ffn_down.weight"},
		{"blk.5.ffn_gate_exps.weight", "blk.5", 5, "blk.*.ffn_gate_exps.weight"},
		// Outside any block.
		{"model.embed_tokens.weight", "", 0, ""},
		{"lm_head.weight", "", 0, ""},
		{"token_embd.weight", "", 0, ""},
		{"output_norm.weight", "", 0, ""},
		{"layer1.weight", "", 0, ""},
		{"x.1a.y", "", 0, ""},
		{"3.weight", "", 0, ""},          // the first component is not a block number
		{"fc.3", "", 0, ""},              // nor the last
		{"model.layers.01.x", "", 0, ""}, // nor one with a leading zero
		{"model.layers.-1.x", "", 0, ""},
		{"model.layers.+1.x", "", 0, ""},
		{"a.1234567890.b", "", 0, ""},
		{"a..b", "", 0, ""},
		{"", "", 0, ""},
		{".", "", 0, ""},
	}
	for _, c := range cases {
		layer, index, ok := Layer(c.name)
		role, rok := Role(c.name)
		wantRole := c.role
		if c.layer == "" {
			wantRole = c.name
		}
		if layer != c.layer || index != c.index || ok != (c.layer != "") || role != wantRole || rok != ok {
			t.Errorf("%q: Layer %q %d %v, Role %q %v; want %q %d, role %q", c.name, layer, index, ok, role, rok, c.layer, c.index, wantRole)
		}
	}
}

// FuzzLayer checks the rule's invariants on any name: a layer is a proper
// prefix of the name ending at a dot, and the role puts "*" where the block
// number was.
func FuzzLayer(f *testing.F) {
	for _, s := range []string{"model.layers.3.mlp.down_proj.weight", "blk.7.attn_q.weight", "a.0.b", "x", "..", "a.00.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		layer, index, ok := Layer(name)
		role, rok := Role(name)
		if ok != rok {
			t.Fatalf("Layer ok %v, Role ok %v", ok, rok)
		}
		if !ok {
			if layer != "" || index != 0 || role != name {
				t.Fatalf("no layer, yet %q %d %q", layer, index, role)
			}
			return
		}
		if !strings.HasPrefix(name, layer+".") {
			t.Fatalf("layer %q is not a prefix of %q ending before a dot", layer, name)
		}
		i := strings.LastIndexByte(layer, '.')
		if role != layer[:i+1]+"*"+name[len(layer):] || index < 0 {
			t.Fatalf("role %q, index %d of %q", role, index, name)
		}
	})
}
