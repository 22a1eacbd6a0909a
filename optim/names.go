package optim

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// The Llama family: decoder models whose named_parameters() order is embed,
// then per layer attention, MLP and norms, then the final norm and lm_head.
var family = map[string]bool{
	"llama": true, "mistral": true, "qwen2": true, "qwen3": true, "gemma": true, "gemma2": true,
	"gemma3_text": true, "phi3": true, "mixtral": false,
}

// layerRank is the registration order of a decoder layer's parameters (as the
// transformers modelling code registers its modules), by the name after
// "model.layers.N.".
var layerRank = map[string]int{
	"self_attn.q_proj": 0, "self_attn.k_proj": 1, "self_attn.v_proj": 2,
	"self_attn.o_proj": 3, "self_attn.qkv_proj": 4, // phi3 registers o_proj before qkv_proj
	"self_attn.q_norm": 5, "self_attn.k_norm": 6,
	"mlp.gate_proj": 10, "mlp.up_proj": 11, "mlp.gate_up_proj": 12, "mlp.down_proj": 13,
	"input_layernorm": 20, "post_attention_layernorm": 21,
	"pre_feedforward_layernorm": 22, "post_feedforward_layernorm": 23,
}

var layerName = regexp.MustCompile(`^model\.layers\.(\d+)\.(.+)\.(weight|bias)$`)

// registrationKey orders a parameter name as named_parameters() gives it, or
// reports that the name is not one the family's order knows.
func registrationKey(name string) ([4]int, bool) {
	switch name {
	case "model.embed_tokens.weight":
		return [4]int{0}, true
	case "model.norm.weight":
		return [4]int{2}, true
	case "lm_head.weight":
		return [4]int{3}, true
	}
	m := layerName.FindStringSubmatch(name)
	if m == nil {
		return [4]int{}, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return [4]int{}, false
	}
	r, ok := layerRank[m[2]]
	if !ok {
		return [4]int{}, false
	}
	wb := 0
	if m[3] == "bias" {
		wb = 1
	}
	return [4]int{1, n, r, wb}, true
}

// noDecay are the patterns transformers' Trainer.get_decay_parameter_names
// keeps out of weight decay (biases and norm weights), matched on the
// lowercased name.
var noDecay = []*regexp.Regexp{
	regexp.MustCompile(`bias`), regexp.MustCompile(`layernorm`), regexp.MustCompile(`rmsnorm`),
	regexp.MustCompile(`(?:^|\.)norm(?:$|\.)`), regexp.MustCompile(`_norm(?:$|\.)`),
}

func decays(name string) bool {
	l := strings.ToLower(name)
	for _, re := range noDecay {
		if re.MatchString(l) {
			return false
		}
	}
	return true
}

// decaysLegacy is the rule of transformers before 4.46: everything but biases
// and nn.LayerNorm weights (RMSNorm weights decayed).
func decaysLegacy(name string) bool { return !strings.Contains(name, "bias") }

type weight struct {
	name string
	t    *formats.Tensor
}

// weights lists the model parameters of c (not training state, not tied
// copies), in no particular order.
func weights(c *formats.Checkpoint) []weight {
	var out []weight
	for _, t := range c.Tensors {
		if t.TiedTo != "" || strings.Contains(t.Name, "/") || t.File == nil || !formats.IsWeightsFile(t.File.Name) {
			continue
		}
		out = append(out, weight{t.Name, t})
	}
	return out
}

// name names the optimizer's parameters: by the Trainer's order when the
// model is of the Llama family and the order agrees with the groups' sizes
// and the state shapes, else by unique shapes.
func (s *State) name(c *formats.Checkpoint) {
	wc := c
	if c.Layout == formats.LayoutFile {
		// An optimizer file given directly: its directory's weights, if any.
		wc = nil
		if oc, err := formats.Open(c.Dir); err == nil {
			wc = oc
		}
	}
	if wc == nil {
		s.Naming = "no model weights beside the optimizer state: parameters are known by id only"
		return
	}
	ws := weights(wc)
	if len(ws) == 0 {
		s.Naming = "no model weights beside the optimizer state: parameters are known by id only"
		return
	}
	why := s.byOrder(wc.Dir, ws)
	if why == "" {
		return
	}
	s.byShape(ws)
	s.Naming = why + "; parameters are named only where their shape is unique"
}

// byOrder tries the Trainer's order; it returns "" on success or why not.
func (s *State) byOrder(dir string, ws []weight) string {
	cfg, err := formats.ReadConfig(formats.JoinPath(dir, "config.json"))
	if err != nil {
		return "the parameter order cannot be established: no readable config.json"
	}
	if !family[cfg.ModelType] {
		return fmt.Sprintf("the parameter order cannot be established: model_type %q is not of the Llama family ckpt knows", cfg.ModelType)
	}
	var names []weight
	for _, w := range ws {
		if cfg.TieWordEmbeddings && w.name == "lm_head.weight" {
			continue // tied: named_parameters() yields the embedding once
		}
		if _, ok := registrationKey(w.name); !ok {
			return fmt.Sprintf("the parameter order cannot be established: %q is not a %s parameter ckpt knows the place of", w.name, cfg.ModelType)
		}
		names = append(names, w)
	}
	sort.Slice(names, func(i, j int) bool {
		a, _ := registrationKey(names[i].name)
		b, _ := registrationKey(names[j].name)
		return slices.Compare(a[:], b[:]) < 0
	})
	sizes := make([]int, len(s.Groups))
	for i, g := range s.Groups {
		sizes[i] = len(g.Params)
	}
	type rule struct {
		what   string
		decays func(string) bool
	}
	for _, r := range []rule{{"the Trainer's two groups", decays}, {"the Trainer's two groups (transformers before 4.46: norm weights decayed)", decaysLegacy}, {"one group in named_parameters() order", nil}} {
		var order []weight
		if r.decays == nil {
			if len(sizes) != 1 || sizes[0] != len(names) {
				continue
			}
			order = names
		} else {
			var a, b []weight
			for _, w := range names {
				if r.decays(w.name) {
					a = append(a, w)
				} else {
					b = append(b, w)
				}
			}
			if len(sizes) != 2 || sizes[0] != len(a) || sizes[1] != len(b) {
				continue
			}
			order = append(a, b...)
		}
		if s.assign(order) {
			s.Naming = fmt.Sprintf("model_type %s, %d parameters in %s, checked against the weight shapes", cfg.ModelType, len(order), r.what)
			return ""
		}
		return fmt.Sprintf("the parameter order (%s) disagrees with the optimizer state's shapes", r.what)
	}
	return fmt.Sprintf("the parameter order cannot be established: the optimizer's groups hold %v parameters, the model's %d parameters split by no Trainer rule into those sizes", sizes, len(names))
}

// assign names the parameters by ids in group order when most state shapes
// agree; the disagreeing ones are kept for the shape check to report.
func (s *State) assign(order []weight) bool {
	var ids []int64
	for _, g := range s.Groups {
		ids = append(ids, g.Params...)
	}
	if len(ids) != len(order) {
		return false
	}
	byID := map[int64]*Param{}
	for _, p := range s.Params {
		byID[p.ID] = p
	}
	agree, disagree := 0, 0
	for i, id := range ids {
		p := byID[id]
		if p == nil || p.Shape == nil {
			continue
		}
		if slices.Equal(p.Shape, order[i].t.Shape) {
			agree++
		} else {
			disagree++
		}
	}
	// An order that puts most parameters on weights of their shape is the
	// order; one that does not is no evidence at all.
	if agree == 0 || disagree*10 > agree {
		return false
	}
	src := SourceOrder
	for i, id := range ids {
		p := byID[id]
		if p == nil {
			continue
		}
		n := order[i].name
		p.Name, p.NameSource, p.Weight = &n, &src, order[i].t
		p.ShapeOK = p.Shape == nil || slices.Equal(p.Shape, order[i].t.Shape)
	}
	return true
}

// byShape names a parameter when its shape is held by exactly one weight and
// exactly one optimizer parameter.
func (s *State) byShape(ws []weight) {
	key := func(sh []uint64) string { return fmt.Sprint(sh) }
	wCount, pCount := map[string]int{}, map[string]int{}
	wBy := map[string]weight{}
	for _, w := range ws {
		wCount[key(w.t.Shape)]++
		wBy[key(w.t.Shape)] = w
	}
	for _, p := range s.Params {
		if p.Shape != nil {
			pCount[key(p.Shape)]++
		}
	}
	src := SourceShape
	for _, p := range s.Params {
		if p.Shape == nil {
			continue
		}
		k := key(p.Shape)
		if wCount[k] == 1 && pCount[k] == 1 {
			w := wBy[k]
			n := w.name
			p.Name, p.NameSource, p.Weight, p.ShapeOK = &n, &src, w.t, true
		}
	}
}
