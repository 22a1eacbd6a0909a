package optim

// OneRead reports, per parameter, whether Scan's one-read pass computed its
// prediction (false: left to predict, or Scan did not run).
func OneRead(s *State) []bool {
	out := make([]bool, len(s.Params))
	for i := range out {
		out[i] = i < len(s.fused) && s.fused[i].ok
	}
	return out
}

// SetSumRange sets the number of elements of a range of the update's sums
// (a multiple of 8) until the returned function restores it.
func SetSumRange(r int64) (restore func()) {
	old := sumRange
	sumRange = r
	return func() { sumRange = old }
}
