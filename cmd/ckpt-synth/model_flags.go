package main

import (
	"github.com/spf13/pflag"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// modelFlags are the flags that say what model to generate, shared by the
// checkpoint and run commands.
type modelFlags struct {
	arch, dtype string
	shards      int
	seed        int64
}

// add declares the flags on fs; shardsHelp words --shards for the command.
func (m *modelFlags) add(fs *pflag.FlagSet, dtypeHelp, shardsHelp, seedHelp string) {
	fs.StringVar(&m.arch, "arch", "tiny", "architecture: tiny, qwen2-0.5b or qwen2-7b")
	fs.StringVar(&m.dtype, "dtype", "bf16", dtypeHelp)
	fs.IntVar(&m.shards, "shards", 1, shardsHelp)
	fs.Int64Var(&m.seed, "seed", 1, seedHelp)
}

// resolve turns the names into the generator's architecture and dtype.
func (m *modelFlags) resolve() (synth.Arch, formats.DType, error) {
	a, err := synth.ArchByName(m.arch)
	if err != nil {
		return synth.Arch{}, "", err
	}
	dt, err := parseDType(m.dtype)
	return a, dt, err
}
