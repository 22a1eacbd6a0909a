package formats

import (
	"bytes"
	"encoding/json"
	"sort"
)

// Index is a model.safetensors.index.json.
type Index struct {
	Path      string
	Metadata  map[string]any
	WeightMap map[string]string // tensor name → shard file name
}

// TotalSize is metadata.total_size when present and numeric.
func (ix *Index) TotalSize() (float64, bool) {
	switch v := ix.Metadata["total_size"].(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	}
	return 0, false
}

// Shards lists the distinct shard names of the weight map, sorted.
func (ix *Index) Shards() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ix.WeightMap {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// ReadIndex parses a sharded checkpoint's index file.
func ReadIndex(path string) (*Index, error) {
	data, err := ReadSideFile(path, MaxIndexSize)
	if err != nil {
		return nil, sideFileFinding(err, ErrIndex)
	}
	return ParseIndex(path, data)
}

// sideFileFinding turns a side file's refusal by ReadSideFile into a finding
// of the reader's own kind (the refusal's kind stays reachable by errors.Is).
func sideFileFinding(err error, kind error) error {
	if fe, ok := err.(*Error); ok {
		return &Error{Kind: kind, Also: fe.Kind, File: fe.File, Offset: -1, Detail: fe.Detail}
	}
	return err
}

// ParseIndex parses index JSON. A missing or malformed weight_map is an ErrIndex.
func ParseIndex(path string, data []byte) (*Index, error) {
	if bytes.HasPrefix(data, []byte(lfsPrefix)) {
		return nil, newErr(ErrLFSPointer, path, "", -1, "index is a Git LFS pointer, not JSON: run `git lfs pull`")
	}
	var raw struct {
		Metadata  json.RawMessage            `json:"metadata"`
		WeightMap map[string]json.RawMessage `json:"weight_map"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, newErr(ErrIndex, path, "", dec.InputOffset(), "index is not valid JSON: %v", err)
	}
	// Python's json.load (what transformers uses) rejects anything after the
	// object but whitespace.
	for i, b := range data[dec.InputOffset():] {
		if !jsonSpace(b) {
			return nil, newErr(ErrIndex, path, "", dec.InputOffset()+int64(i),
				"unexpected byte 0x%02x after the index's JSON object (a concatenated or half-overwritten file?)", b)
		}
	}
	if raw.WeightMap == nil {
		return nil, newErr(ErrIndex, path, "", -1, "index has no weight_map object")
	}
	ix := &Index{Path: path, WeightMap: make(map[string]string, len(raw.WeightMap))}
	// metadata is open-ended; a value that is not an object is kept out of
	// Metadata rather than failing the index (only total_size is ever used).
	if len(raw.Metadata) > 0 {
		mdec := json.NewDecoder(bytes.NewReader(raw.Metadata))
		mdec.UseNumber()
		var md map[string]any
		if mdec.Decode(&md) == nil {
			ix.Metadata = md
		}
	}
	for name, v := range raw.WeightMap {
		var shard string
		if err := json.Unmarshal(v, &shard); err != nil || len(v) == 0 || v[0] != '"' { // null unmarshals as ""
			return nil, newErr(ErrIndex, path, name, -1, "weight_map value must be a shard file name, found %s", string(v))
		}
		ix.WeightMap[name] = shard
	}
	return ix, nil
}
