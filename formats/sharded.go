package formats

import (
	"fmt"
	"sort"
)

// openSharded reads the index, opens each shard it names (after the path safety
// check) and cross-checks index against shards. others are further index files
// in the directory (variants such as index.fp16.json): their shards are not strays.
// list is the directory's listing, for the strays.
func (c *Checkpoint) openSharded(indexPath string, others []string, list *dirListing) error {
	ix, err := ReadIndex(indexPath)
	if err != nil {
		fe, ok := err.(*Error)
		if !ok {
			return err
		}
		c.Problems = append(c.Problems, Problem{SevError, fe})
		return nil
	}
	c.Index = ix
	bad := func(sev Severity, kind error, tensor, format string, args ...any) {
		also := error(nil)
		if k, ok := kind.(indexCheck); ok {
			kind, also = ErrIndex, k.also
		}
		c.Problems = append(c.Problems, Problem{sev, &Error{Kind: kind, Also: also, File: indexPath, Tensor: tensor, Offset: -1, Detail: fmt.Sprintf(format, args...)}})
	}
	if len(ix.WeightMap) == 0 {
		bad(SevError, ErrIndex, "", "weight_map is empty: the index names no tensors, so loaders find no weights")
	}
	shardFiles := map[string]*File{}
	for _, shard := range ix.Shards() {
		p, err := SafeJoin(c.Dir, shard)
		if err != nil {
			if fe, ok := err.(*Error); ok {
				fe.File = indexPath
				c.Problems = append(c.Problems, Problem{SevError, fe})
				continue
			}
			return err
		}
		st, err := FSFor(p).Stat(p)
		if err != nil {
			n := 0
			for _, s := range ix.WeightMap {
				if s == shard {
					n++
				}
			}
			bad(SevError, ErrMissingShard, "", "shard %q is missing (%d tensors of the weight_map live there)", shard, n)
			continue
		}
		if !st.Mode().IsRegular() {
			bad(SevError, ErrMissingShard, "", "shard %q is not a regular file (%s); it was not opened", shard, st.Mode().Type())
			continue
		}
		if err := c.addFile(p, shard); err != nil {
			return err
		}
		shardFiles[shard] = c.Files[len(c.Files)-1]
	}
	// Every mapped tensor must be in its shard, and every shard tensor mapped there.
	names := map[string]map[string]bool{}
	for shard, f := range shardFiles {
		if f.Parsed() {
			set := map[string]bool{}
			for _, t := range f.Tensors() {
				set[t.Name] = true
			}
			names[shard] = set
		}
	}
	var missing []string
	for name, shard := range ix.WeightMap {
		if set, ok := names[shard]; ok && !set[name] && !inAny(names, name) {
			missing = append(missing, name) // (found in another shard: reported below as in the wrong shard)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		bad(SevError, indexCheck{ErrNotInShard}, name, "listed in weight_map under %q but absent from that shard", ix.WeightMap[name])
	}
	var total uint64
	for _, shard := range sortedKeys(shardFiles) {
		f := shardFiles[shard]
		if !f.Parsed() {
			continue
		}
		for _, t := range f.Tensors() {
			switch {
			case f.Format() == ContainerSafetensors:
				total += t.End - t.Begin
			case t.TiedTo == "":
				total += t.Numel() * uint64(t.DType.Size())
			}
			if got, ok := ix.WeightMap[t.Name]; !ok {
				bad(SevWarning, indexCheck{ErrUnlistedTensor}, t.Name, "present in shard %q but not listed in weight_map (loaders will ignore it)", shard)
			} else if got != shard {
				bad(SevError, indexCheck{ErrWrongShard}, t.Name, "present in shard %q but weight_map says it is in %q", shard, got)
			}
		}
	}
	allValid := len(shardFiles) == len(ix.Shards())
	for _, f := range shardFiles {
		allValid = allValid && f.Parsed()
	}
	if ts, ok := ix.TotalSize(); ok && allValid && len(ix.WeightMap) > 0 && ts != float64(total) {
		bad(SevWarning, indexCheck{ErrTotalSize}, "", "metadata.total_size is %.0f but the shards hold %d bytes of tensor data", ts, total)
	}
	// Stray shards: *.safetensors beside the index that no index names.
	known := map[string]bool{}
	for _, s := range ix.Shards() {
		known[s] = true
	}
	for _, other := range others {
		if oix, err := ReadIndex(other); err == nil {
			for _, s := range oix.Shards() {
				known[s] = true
			}
		}
	}
	for _, p := range list.match("*.safetensors") {
		name := BaseOf(p)
		if !known[name] && name != "adapter_model.safetensors" {
			bad(SevWarning, indexCheck{ErrStrayShard}, "", "stray shard %q beside the index is not named in weight_map (left over from another save?)", name)
		}
	}
	return nil
}

func inAny(sets map[string]map[string]bool, name string) bool {
	for _, set := range sets {
		if set[name] {
			return true
		}
	}
	return false
}

// indexCheck marks a cross-check finding: Kind ErrIndex, Also the check.
type indexCheck struct{ also error }

func (k indexCheck) Error() string { return k.also.Error() }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
