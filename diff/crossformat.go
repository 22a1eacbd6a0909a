package diff

import (
	"fmt"
	"math"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// Diff across formats: a safetensors checkpoint and a GGUF conversion of it.
// The safetensors names are mapped to the names llama.cpp's converter writes
// (convert_hf_to_gguf.py, gguf-py's tensor_mapping.py) for the architectures
// below; shapes agree once GGUF's ne is reversed (formats does that). For the
// llama architecture (Llama and Mistral checkpoints) the converter permutes
// the rows of q_proj and k_proj within each head (rotary halves interleaved):
// the comparison undoes it. Each tensor's relative error is then judged
// against what its GGUF type usually costs.

// CrossFormat describes a safetensors ↔ GGUF comparison.
type CrossFormat struct {
	Architecture string   // general.architecture of the GGUF side
	ModelType    string   // config.json's model_type of the safetensors side, "" when absent
	GGUFSide     string   // "a" or "b"
	Notes        []string // what was mapped, undone or left out
}

// ggufLayerNames maps the part of a Hugging Face tensor name after
// "model.layers.N." to the part after "blk.N." (without the .weight/.bias
// suffix).
var ggufLayerNames = map[string]string{
	"self_attn.q_proj":         "attn_q",
	"self_attn.k_proj":         "attn_k",
	"self_attn.v_proj":         "attn_v",
	"self_attn.o_proj":         "attn_output",
	"self_attn.q_norm":         "attn_q_norm",
	"self_attn.k_norm":         "attn_k_norm",
	"mlp.gate_proj":            "ffn_gate",
	"mlp.up_proj":              "ffn_up",
	"mlp.down_proj":            "ffn_down",
	"input_layernorm":          "attn_norm",
	"post_attention_layernorm": "ffn_norm",
}

// gemma2LayerNames are the names that differ for Gemma 2 and 3, which have
// norms before and after both the attention and the MLP.
var gemma2LayerNames = map[string]string{
	"post_attention_layernorm":   "post_attention_norm",
	"pre_feedforward_layernorm":  "ffn_norm",
	"post_feedforward_layernorm": "post_ffw_norm",
}

// crossArchs are the architectures whose names are mapped, by
// general.architecture, with the model_type values of config.json that
// convert to it.
var crossArchs = map[string][]string{
	"llama":  {"llama", "mistral"},
	"qwen2":  {"qwen2"},
	"qwen3":  {"qwen3"},
	"gemma":  {"gemma"},
	"gemma2": {"gemma2"},
	"gemma3": {"gemma3", "gemma3_text"},
}

// GGUFName is the name llama.cpp's converter gives the Hugging Face tensor
// hf of a model of GGUF architecture arch; ok is false for a name it does
// not map.
func GGUFName(arch, hf string) (string, bool) {
	switch hf {
	case "model.embed_tokens.weight":
		return "token_embd.weight", true
	case "model.norm.weight":
		return "output_norm.weight", true
	case "lm_head.weight":
		return "output.weight", true
	}
	rest, ok := strings.CutPrefix(hf, "model.layers.")
	if !ok {
		return "", false
	}
	n, rest, ok := strings.Cut(rest, ".")
	if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
		return "", false
	}
	suffix := ""
	for _, s := range []string{".weight", ".bias"} {
		if strings.HasSuffix(rest, s) {
			rest, suffix = strings.TrimSuffix(rest, s), s
		}
	}
	if suffix == "" {
		return "", false
	}
	g, ok := "", false
	if arch == "gemma2" || arch == "gemma3" {
		g, ok = gemma2LayerNames[rest]
	}
	if !ok {
		g, ok = ggufLayerNames[rest]
	}
	if !ok {
		return "", false
	}
	return "blk." + n + "." + g + suffix, true
}

// usualError is the relative L2 error (‖gguf − source‖ / ‖source‖) a
// quantization type usually costs on trained weights, from its step size on
// roughly normal weights: a conversion is judged against it.
var usualError = map[formats.DType]float64{
	formats.F32: 1e-7, formats.F16: 5e-4, formats.BF16: 3e-3,
	"Q8_0": 0.006, "Q8_K": 0.006, "Q6_K": 0.02, "Q5_K": 0.04, "Q5_0": 0.045, "Q5_1": 0.045,
	"Q4_K": 0.08, "Q4_0": 0.1, "Q4_1": 0.1, "IQ4_NL": 0.08, "IQ4_XS": 0.08, "MXFP4": 0.12,
	"Q3_K": 0.18, "Q2_K": 0.35, "TQ1_0": 0.6, "TQ2_0": 0.6, "Q2_0": 0.6, "Q1_0": 0.8,
}

// suspectAbove is the relative error from which a tensor is suspect whatever
// its type: two unrelated tensors of the same spread differ by about √2.
const suspectAbove = 0.9

// UsualError is the relative error dt usually costs, and whether it is known.
func UsualError(dt formats.DType) (float64, bool) {
	e, ok := usualError[dt]
	return e, ok
}

// isGGUF reports whether every file of c is GGUF (and there is one).
func isGGUF(c *formats.Checkpoint) bool {
	for _, f := range c.Files {
		if f.Format() != formats.ContainerGGUF {
			return false
		}
	}
	return len(c.Files) > 0
}

// rowPerm undoes llama.cpp's q/k row permutation: within each head of
// headRows rows, GGUF row 2j+k holds source row k·headRows/2 + j.
type rowPerm struct {
	headRows int
	cols     uint64
	source   string // "a" or "b": the side whose rows are reordered
}

// crossPlan prepares a safetensors ↔ GGUF comparison: the safetensors side
// renamed, the q/k permutations to undo, problems when the architectures
// disagree. It returns nil when a and b are not one of each.
type crossPlan struct {
	info  CrossFormat
	a, b  *formats.Checkpoint
	perms map[string]rowPerm // by (GGUF) tensor name
	skip  map[string]string  // by GGUF name: why the values are not compared
	probs []formats.Problem
}

func planCross(a, b *formats.Checkpoint) *crossPlan {
	ga, gb := isGGUF(a), isGGUF(b)
	if ga == gb {
		return nil
	}
	st, gg, side := a, b, "b"
	if ga {
		st, gg, side = b, a, "a"
	}
	cp := &crossPlan{perms: map[string]rowPerm{}, skip: map[string]string{}}
	cp.info.GGUFSide = side
	h := gg.Files[0].GGUF
	if h != nil {
		cp.info.Architecture = h.Architecture()
	}
	arch := cp.info.Architecture
	cfg := st.Config
	if cfg == nil {
		if c, err := formats.ReadConfig(formats.JoinPath(st.Dir, "config.json")); err == nil {
			cfg = c
		}
	}
	problem := func(format string, args ...any) {
		cp.probs = append(cp.probs, formats.Problem{Severity: formats.SevError, Err: &formats.Error{Kind: formats.ErrConfig, File: st.Path, Offset: -1, Detail: fmt.Sprintf(format, args...)}})
	}
	types, known := crossArchs[arch]
	switch {
	case !known:
		problem("the GGUF's general.architecture is %q, whose tensor names ckpt does not map (it maps %s); tensors are compared by their names as they are", arch, strings.Join(sortedKeys(crossArchs), ", "))
	case cfg == nil:
		cp.info.Notes = append(cp.info.Notes, "no config.json beside the safetensors side: its architecture could not be checked against the GGUF's "+arch)
	default:
		cp.info.ModelType = cfg.ModelType
		match := false
		for _, t := range types {
			match = match || t == cfg.ModelType
		}
		if !match {
			problem("config.json says model_type %q but the GGUF's general.architecture is %q (converted from %s): these are not the same model", cfg.ModelType, arch, strings.Join(types, " or "))
		}
	}
	rename := func(n string) string {
		if g, ok := GGUFName(arch, n); ok && known {
			return g
		}
		return n
	}
	renamed := st.Renamed(rename)
	if ga {
		cp.a, cp.b = a, renamed
	} else {
		cp.a, cp.b = renamed, b
	}
	if !known {
		return cp
	}
	cp.info.Notes = append(cp.info.Notes, "safetensors names mapped to llama.cpp's names for "+arch)
	if arch == "llama" && h != nil {
		heads, _ := h.UintValue("llama.attention.head_count")
		kv, ok := h.UintValue("llama.attention.head_count_kv")
		if !ok {
			kv = heads
		}
		undone := 0
		for _, t := range gg.Tensors {
			nh := uint64(0)
			switch {
			case strings.HasSuffix(t.Name, ".attn_q.weight"):
				nh = heads
			case strings.HasSuffix(t.Name, ".attn_k.weight"):
				nh = kv
			default:
				continue
			}
			if len(t.Shape) != 2 || nh == 0 || t.Shape[0]%nh != 0 || (t.Shape[0]/nh)%2 != 0 {
				cp.skip[t.Name] = fmt.Sprintf("its rows were permuted by the converter, and %d heads do not divide its shape %v: not compared", nh, t.Shape)
				continue
			}
			src := "a"
			if ga {
				src = "b"
			}
			cp.perms[t.Name] = rowPerm{headRows: int(t.Shape[0] / nh), cols: t.Shape[1], source: src}
			undone++
		}
		if undone > 0 {
			cp.info.Notes = append(cp.info.Notes, fmt.Sprintf("the converter's q/k row permutation undone on %d tensors (%d heads, %d key/value heads)", undone, heads, kv))
		}
	}
	if strings.HasPrefix(arch, "gemma") {
		for _, t := range gg.Tensors {
			if strings.HasSuffix(t.Name, "norm.weight") {
				cp.skip[t.Name] = "Gemma's converter stores norm weights plus 1: not compared"
			}
		}
	}
	return cp
}

func sortedKeys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// judge sets each compared tensor's usual error and marks the suspect ones:
// a relative error above 10× what the GGUF side's type usually costs (or
// above suspectAbove whatever the type: a tensor compared with the wrong
// source).
func (cp *crossPlan) judge(r *Result) {
	for _, d := range r.Tensors {
		dt := d.DTypeB
		if cp.info.GGUFSide == "a" {
			dt = d.DTypeA
		}
		u, ok := usualError[dt]
		if !ok || !d.Compared {
			continue
		}
		d.UsualError = u
		rel, ok := d.RelL2()
		if ok && rel > math.Min(10*u, suspectAbove) {
			d.Suspect = true
		}
	}
}

// permuteRows reorders the rows of raw (a tensor chunk of whole heads, rows
// of rowBytes) from the source order to the converter's: within each head,
// row 2j+k of the result is source row k·half + j.
func permuteRows(dst, raw []byte, headRows, rowBytes int) {
	half := headRows / 2
	headBytes := headRows * rowBytes
	for h := 0; h+headBytes <= len(raw); h += headBytes {
		for j := 0; j < half; j++ {
			for k := 0; k < 2; k++ {
				src := h + (k*half+j)*rowBytes
				out := h + (2*j+k)*rowBytes
				copy(dst[out:out+rowBytes], raw[src:src+rowBytes])
			}
		}
	}
}
