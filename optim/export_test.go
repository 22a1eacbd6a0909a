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
