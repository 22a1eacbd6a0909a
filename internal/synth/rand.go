package synth

import "math"

// rng is xorshift64*: cheap, good enough for synthetic weights, and fully
// determined by its seed.
type rng struct{ s uint64 }

// splitmix64 scrambles a seed so that nearby seeds give unrelated streams.
func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// nameHash is FNV-1a of a tensor name.
func nameHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// streamSeed is the seed of one chunk of one noise stream of one tensor.
func streamSeed(seed int64, name string, stream, chunk int) uint64 {
	x := splitmix64(uint64(seed))
	x = splitmix64(x ^ nameHash(name))
	x = splitmix64(x ^ uint64(stream)<<32 ^ uint64(chunk))
	if x == 0 {
		x = 1 // xorshift must not start at zero
	}
	return x
}

func (r *rng) next() uint64 {
	x := r.s
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	r.s = x
	return x * 0x2545F4914F6CDD1D
}

// Irwin–Hall with four 16-bit uniforms: mean 4·(2^16−1)/2, variance 4·(2^32−1)/12.
var (
	ihMean = 2 * float64(0xFFFF)
	ihStd  = math.Sqrt(4 * (65536.0*65536.0 - 1) / 12)
)

// normal is an approximate standard normal: the sum of four uniforms from one
// 64-bit draw, standardised (bounded at ±3.46σ; plenty for synthetic weights).
func (r *rng) normal() float64 {
	x := r.next()
	s := x&0xFFFF + x>>16&0xFFFF + x>>32&0xFFFF + x>>48
	return (float64(s) - ihMean) / ihStd
}

// uniform is in [0, 1).
func (r *rng) uniform() float64 { return float64(r.next()>>11) / (1 << 53) }

// fillNormal sets dst to mean + std·N(0,1) from the given stream seed.
func fillNormal(dst []float64, seed uint64, mean, std float64) {
	r := rng{seed}
	for i := range dst {
		dst[i] = mean + std*r.normal()
	}
}

// addNormal adds std·N(0,1) to dst from the given stream seed.
func addNormal(dst []float64, seed uint64, std float64) {
	r := rng{seed}
	for i := range dst {
		dst[i] += std * r.normal()
	}
}
