//go:build !linux

package inspect

import "time"

// threadCPU is not measured here: the benchmarks report wall-clock rates only.
func threadCPU() (time.Duration, bool) { return 0, false }

// processCPU is not measured here.
func processCPU() (time.Duration, bool) { return 0, false }
