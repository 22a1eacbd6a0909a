package inspect

// Thresholds are the rules of the value findings beyond NaN/Inf. Every field
// has a documented default (DefaultThresholds); in Options a zero field means
// its default, so a command line can expose each one as a flag and leave the
// others alone. To switch a numeric rule off, set it to +Inf.
//
// The defaults are chosen to raise no error on healthy checkpoints (every
// healthy real file the project tests against, and generated Qwen2-shaped
// checkpoints with realistic initialisation) while a single flipped exponent
// bit in one weight is an error on that tensor and no other.
type Thresholds struct {
	// HugeAbs: a finite value with |x| above it is an error. Trained weights
	// stay within a few hundred; uninitialised memory and a flipped top
	// exponent bit (0.02 becomes about 1e36 in BF16/F32) do not. Default 1e30.
	HugeAbs float64

	// RoleMinMembers: tensors with the same role across layers (the name with
	// its layer number replaced, e.g. model.layers.*.mlp.down_proj.weight,
	// and the same shape) are compared with each other only when the role has
	// at least this many members. Default 4.
	RoleMinMembers int
	// RoleMinElements: tensors with fewer finite values stay out of the role
	// comparison (the RMS and the largest value of a handful of numbers say
	// little). Default 64.
	RoleMinElements int
	// MinSpread: floor of the robust spread (1.4826 × MAD) of ln(RMS) and
	// ln(absmax) within a role, so that members that are almost identical
	// (a fresh initialisation) do not turn small differences into huge
	// z-scores. Default 0.1 (about 10%).
	MinSpread float64
	// OutlierWarnZ and OutlierWarnRatio: a tensor whose RMS or absmax has a
	// robust z-score of at least OutlierWarnZ within its role AND differs
	// from the role's median by at least OutlierWarnRatio (either way) is a
	// warning. Defaults 6 and 4.
	OutlierWarnZ     float64
	OutlierWarnRatio float64
	// OutlierErrorZ and OutlierErrorRatio: an outlier ABOVE its role's median
	// by both is an error (weights that exploded or were corrupted; a tensor
	// far below its peers is only ever a warning). Defaults 12 and 64.
	OutlierErrorZ     float64
	OutlierErrorRatio float64

	// ZeroMatrixError: report an all-zero 2-D weight (not a bias) as an error
	// instead of a warning. Off by default: LoRA B matrices start at zero and
	// some architectures zero-initialise output projections, so an all-zero
	// matrix is a question for a person, not proof of damage.
	ZeroMatrixError bool
}

// DefaultThresholds returns the default rules.
func DefaultThresholds() Thresholds {
	return Thresholds{
		HugeAbs:           1e30,
		RoleMinMembers:    4,
		RoleMinElements:   64,
		MinSpread:         0.1,
		OutlierWarnZ:      6,
		OutlierWarnRatio:  4,
		OutlierErrorZ:     12,
		OutlierErrorRatio: 64,
	}
}

// withDefaults fills every zero (or negative, or NaN) field with its default.
func (t Thresholds) withDefaults() Thresholds {
	d := DefaultThresholds()
	f := func(v *float64, def float64) {
		if !(*v > 0) {
			*v = def
		}
	}
	f(&t.HugeAbs, d.HugeAbs)
	f(&t.MinSpread, d.MinSpread)
	f(&t.OutlierWarnZ, d.OutlierWarnZ)
	f(&t.OutlierWarnRatio, d.OutlierWarnRatio)
	f(&t.OutlierErrorZ, d.OutlierErrorZ)
	f(&t.OutlierErrorRatio, d.OutlierErrorRatio)
	if t.RoleMinMembers <= 0 {
		t.RoleMinMembers = d.RoleMinMembers
	}
	if t.RoleMinElements <= 0 {
		t.RoleMinElements = d.RoleMinElements
	}
	return t
}

// fp16Max is the largest finite IEEE binary16 value.
const fp16Max = 65504
