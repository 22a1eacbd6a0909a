package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ckpt-tool/ckpt/convert"
	"github.com/ckpt-tool/ckpt/formats"
)

// ckpt convert: a PyTorch checkpoint written as verified safetensors.

func init() {
	register(command{
		name:    "convert",
		summary: "write a PyTorch checkpoint (.bin/.pt/.pth) as verified safetensors",
		run:     runConvertCmd,
	})
}

const convertUsage = "convert IN -o OUT [--max-shard-size 5GB] [--clone-tied] [--force] [--json]"

func runConvertCmd(args []string, stdout, stderr io.Writer) error {
	var out, maxShard string
	var force, asJSON, cloneTied bool
	fs := newFlagSet("convert", convertUsage, stderr)
	fs.StringVarP(&out, "out", "o", "", "where to write: a .safetensors file, or a directory (model.safetensors, or shards and model.safetensors.index.json)")
	fs.StringVar(&maxShard, "max-shard-size", "5GB", "largest shard, as save_pretrained takes it (5GB, 500MB, or bytes)")
	fs.BoolVar(&cloneTied, "clone-tied", false, "write tied tensors (same bytes under two names) as copies instead of once")
	fs.BoolVar(&force, "force", false, "replace existing output files (atomically)")
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || out == "" {
		return usagef("usage: ckpt "+convertUsage, "convert takes one input and -o OUT")
	}
	size, err := parseShardSize(maxShard)
	if err != nil {
		return usagef("give a size such as 5GB, 500MB or 1000000", "--max-shard-size %q: %v", maxShard, err)
	}
	res, err := convert.Convert(fs.Arg(0), out, convert.Options{MaxShardSize: size, Overwrite: force, CloneTied: cloneTied})
	if err != nil {
		return &pathError{Path: fs.Arg(0), Err: err}
	}
	if asJSON {
		return writeJSON(stdout, map[string]any{"input": fs.Arg(0), "files": res.Files, "tensors": res.Tensors, "bytes": res.Bytes, "tied": res.Tied})
	}
	fmt.Fprintf(stdout, "wrote %d tensors (%s) to %d file(s), verified byte for byte:\n", res.Tensors, formats.HumanBytes(res.Bytes), len(res.Files))
	for _, f := range res.Files {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	if len(res.Tied) > 0 {
		fmt.Fprintf(stdout, "%d tied tensor(s) written once and listed in __metadata__[%q]\n", len(res.Tied), convert.TiedKey)
	}
	return nil
}

// parseShardSize reads a size as save_pretrained takes it: decimal units
// (KB, MB, GB, TB), binary ones (KiB, MiB, GiB) or plain bytes.
func parseShardSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a positive size")
	}
	return int64(n * float64(mult)), nil
}
