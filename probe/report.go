package probe

import (
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// CheckProbe is the check name of probe's findings.
const CheckProbe = "probe"

// Where a value is computed in a decoder layer, as the report names it.
const (
	WhereEmbedding = "embedding"
	WhereNorm      = "norm"
	WhereAttention = "attention"
	WhereResidual  = "residual"
	WhereMLP       = "mlp"
	WhereFinalNorm = "final_norm"
	WhereLogits    = "logits"
)

// Report is the result of one probe. Statistics are over finite values only;
// NaN means there was no finite value.
type Report struct {
	Path   string
	Arch   string
	DType  formats.DType
	Tokens []int
	// Embedding holds the statistics of the embedded tokens (layer -1).
	Embedding LayerStats
	Layers    []LayerStats
	// FirstNonFinite is the first place a non-finite value appears in the
	// order of computation, nil when every activation stayed finite.
	FirstNonFinite *Place
	LogitsAbsmax   float64
	LogitsFinite   bool
	Positions      []Position
	Findings       []inspect.Finding
	Healthy        bool // no error finding
}

// LayerStats summarises one decoder layer's outputs over the probed tokens.
type LayerStats struct {
	Layer       int
	AttnAbsmax  float64 // the attention block's output (after o_proj)
	MLPAbsmax   float64 // the MLP block's output (after down_proj)
	ResidAbsmax float64 // the residual stream leaving the layer
	ResidRMS    float64
	// NonFinite counts the non-finite values in the residual stream leaving
	// the layer (tokens × hidden size).
	NonFinite int
}

// Place is where a value is computed: a layer (-1 for the embedding, the
// number of layers for the final norm and the logits) and a step of it.
type Place struct {
	Layer int
	Where string
	// LastFiniteAbsmax is the largest magnitude of the last activation that was
	// entirely finite before this one (the input of the step that failed).
	LastFiniteAbsmax float64
	// FiniteAbsmax is the largest finite magnitude in the failing output
	// (NaN when none of it is finite).
	FiniteAbsmax float64
	// NonFinite counts the failing output's non-finite values.
	NonFinite int
	// UnroundedAbsmax is the largest finite magnitude the failing step
	// computed in float32 before its output was rounded to the dtype: above
	// the dtype's largest finite value, the rounding made the infinity. NaN
	// when not known (norms, the embedding) or not finite.
	UnroundedAbsmax float64
}

// Position is the next-token distribution after one probed position.
type Position struct {
	Position int
	Valid    bool   // finite, non-negative and summing to 1 within 1e-3
	Why      string // why not, when not valid
	Top      []Top
}

// Top is one of the most probable next tokens.
type Top struct {
	Token int
	Prob  float64 // NaN when the distribution is not finite
	Logit float64
}
