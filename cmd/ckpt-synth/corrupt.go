package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/ckpt-tool/ckpt/internal/synth"
)

const corruptUsage = `corrupt KIND PATH [flags]

Kinds (PATH is a checkpoint directory or a .safetensors file unless noted):
  set-values PATH --tensor NAME --elem I=V ...   V: a number, nan, inf, -inf
  flip-exponent PATH --tensor NAME --elem I       flip the top exponent bit of element I
  scale PATH --tensor NAME --factor F             multiply a tensor by F
  truncate FILE --bytes N                         cut N bytes off the end of FILE
  overlap FILE                                    make the second tensor's offsets overlap the first
  lfs FILE                                        replace FILE with a Git LFS pointer
  remove-shard DIR --shard K                      delete shard K (1-based) of a sharded checkpoint
  escape-index DIR                                point a weight_map entry outside DIR ("../...")

These modify files in place: use them on generated checkpoints only.`

func runCorrupt(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("corrupt", corruptUsage, stderr)
	tensor := fs.String("tensor", "", "tensor name")
	elems := fs.StringArray("elem", nil, "element index, or I=V for set-values (repeatable)")
	factor := fs.Float64("factor", 0, "scale factor")
	cut := fs.Int64("bytes", 0, "bytes to cut off the end")
	shard := fs.Int("shard", 0, "shard number, 1-based")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := needArgs(fs, 2, "KIND PATH"); err != nil {
		return err
	}
	kind, path := fs.Arg(0), fs.Arg(1)
	needTensor := func() error {
		if *tensor == "" {
			return fmt.Errorf("corrupt %s: --tensor is required", kind)
		}
		return nil
	}
	switch kind {
	case "set-values":
		if err := needTensor(); err != nil {
			return err
		}
		vals := map[int]float64{}
		for _, e := range *elems {
			i, v, ok := strings.Cut(e, "=")
			if !ok {
				return fmt.Errorf("--elem %q: want INDEX=VALUE", e)
			}
			idx, err := strconv.Atoi(i)
			if err != nil {
				return fmt.Errorf("--elem %q: bad index", e)
			}
			f, err := parseValue(v)
			if err != nil {
				return fmt.Errorf("--elem %q: %w", e, err)
			}
			vals[idx] = f
		}
		if len(vals) == 0 {
			return errors.New("corrupt set-values: give at least one --elem I=V")
		}
		if err := synth.SetValues(path, *tensor, vals); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: set %d elements of %s\n", path, len(vals), *tensor)
	case "flip-exponent":
		if err := needTensor(); err != nil {
			return err
		}
		if len(*elems) != 1 {
			return errors.New("corrupt flip-exponent: give one --elem I")
		}
		i, err := strconv.Atoi((*elems)[0])
		if err != nil {
			return fmt.Errorf("--elem %q: bad index", (*elems)[0])
		}
		if err := synth.FlipExponentBit(path, *tensor, i); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: flipped the top exponent bit of %s[%d]\n", path, *tensor, i)
	case "scale":
		if err := needTensor(); err != nil {
			return err
		}
		if *factor == 0 {
			return errors.New("corrupt scale: --factor is required")
		}
		if err := synth.ScaleTensor(path, *tensor, *factor); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: scaled %s by %g\n", path, *tensor, *factor)
	case "truncate":
		if err := synth.Truncate(path, *cut); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: cut %d bytes off the end\n", path, *cut)
	case "overlap":
		name, err := synth.OverlapOffsets(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s now overlaps the tensor before it\n", path, name)
	case "lfs":
		if err := synth.WriteLFSPointer(path); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: replaced by a Git LFS pointer\n", path)
	case "remove-shard":
		name, err := synth.RemoveShard(path, *shard)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: removed %s\n", path, name)
	case "escape-index":
		name, err := synth.EscapeIndex(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: weight_map entry %s now points outside the directory\n", path, name)
	default:
		return fmt.Errorf("corrupt: unknown kind %q (run 'ckpt-synth corrupt --help')", kind)
	}
	return nil
}

func parseValue(s string) (float64, error) {
	switch strings.ToLower(s) {
	case "nan":
		return math.NaN(), nil
	case "inf", "+inf", "infinity":
		return math.Inf(1), nil
	case "-inf", "-infinity":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}
