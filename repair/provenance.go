package repair

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
)

// Provenance is the entry a repair adds to the __metadata__ of every file it
// writes, under ProvenanceKey, as a JSON string.
type Provenance struct {
	Tool     string      `json:"tool"`
	Version  string      `json:"version"`
	Strategy Strategy    `json:"strategy"`
	Elements bool        `json:"elements"`
	Bad      string      `json:"bad"`
	Good     string      `json:"good"`
	Inputs   []InputFile `json:"inputs"` // every input file read (BAD's and the indexes with their SHA-256)
	File     string      `json:"file"`   // the file this entry is in
	FromGood []Replaced  `json:"from_good"`
	FromBad  int         `json:"from_bad"` // tensors of this file kept from BAD unchanged
}

// Replaced is one tensor of a file whose bytes came (wholly or partly) from GOOD.
type Replaced struct {
	Name      string `json:"name"`
	Mode      From   `json:"mode"`                       // "good" (whole tensor) or "elements"
	Source    string `json:"source"`                     // GOOD's file it came from
	Why       string `json:"why"`                        // what was wrong with BAD's
	NonFinite uint64 `json:"nonfinite_values,omitempty"` // elements: how many values were replaced
	SHA256    string `json:"sha256"`                     // of the bytes written: GOOD's, or for elements the merged ones
}

// ReadProvenance parses the provenance entry of a file's metadata; ok is false
// when there is none.
func ReadProvenance(metadata map[string]string) (p *Provenance, ok bool, err error) {
	s, ok := metadata[ProvenanceKey]
	if !ok {
		return nil, false, nil
	}
	p = new(Provenance)
	if err := json.Unmarshal([]byte(s), p); err != nil {
		return nil, true, fmt.Errorf("the %s metadata entry is not valid JSON: %w", ProvenanceKey, err)
	}
	return p, true, nil
}

// provenance builds the entry of one output file, with every input's SHA-256
// set to fill (the digests are only known once everything has been read).
func (p *Plan) provenance(fp *FilePlan, inputs []InputFile, fill string) string {
	ins := make([]InputFile, len(inputs))
	copy(ins, inputs)
	for i := range ins {
		if ins[i].digest {
			ins[i].SHA256 = fill
		}
	}
	pr := Provenance{Tool: "ckpt", Version: p.opts.Version, Strategy: p.Strategy, Elements: p.Elements,
		Bad: absOr(p.Bad), Good: absOr(p.Good), Inputs: ins, File: fp.Name, FromGood: []Replaced{}}
	for _, tp := range fp.tensors {
		if tp.From == FromBad {
			pr.FromBad++
			continue
		}
		r := Replaced{Name: tp.Name, Mode: tp.From, Source: tp.GoodFile, Why: tp.Why, SHA256: fill}
		if tp.From == FromElements {
			r.NonFinite = tp.NonFinite
		}
		pr.FromGood = append(pr.FromGood, r)
	}
	b, err := json.Marshal(pr)
	if err != nil {
		panic(err) // plain strings and numbers always marshal
	}
	return string(b)
}

func absOr(p string) string {
	if a, err := absPath(p); err == nil {
		return a
	}
	return p
}

// metadataFor is BAD's metadata of a file plus the provenance entry. A file
// written from a PyTorch file has no metadata to keep; it gets what convert
// writes: {"format": "pt"} (which transformers requires of a safetensors file
// with metadata) and its tied tensors.
func metadataFor(fp *FilePlan, prov string) map[string]string {
	md := map[string]string{}
	bad := fp.bad
	if bad.Header != nil {
		for k, v := range bad.Header.Metadata {
			md[k] = v
		}
	}
	if bad.Format() == formats.ContainerTorch {
		md["format"] = "pt"
		if len(fp.Tied) > 0 {
			b, err := json.Marshal(fp.Tied)
			if err != nil {
				panic(err) // a map of strings always marshals
			}
			md[formats.TiedTensorsKey] = string(b)
		}
	}
	if prev, ok := md[ProvenanceKey]; ok {
		md[PreviousProvenanceKey] = prev
	}
	md[ProvenanceKey] = prov
	return md
}

// slotHeader is an encoded header with the byte offsets (within the header
// JSON) of the digest slots, in the order the inputs are listed.
type slotHeader struct {
	text  []byte
	slots []int
}

// digestLen is the length of a hex SHA-256.
const digestLen = 64

// encodeWithSlots encodes the header of one output file twice, with every
// digest slot filled with '0's and then with '1's: the bytes that differ are
// exactly the slots, whatever the escaping of the rest of the header. The
// header written first holds '0's; patch replaces them in place, so the header
// length never changes.
func encodeWithSlots(order []formats.TensorSpec, md func(fill string) map[string]string, nslots int) (*slotHeader, error) {
	a, _, err := formats.EncodeHeader(order, md(strings.Repeat("0", digestLen)))
	if err != nil {
		return nil, err
	}
	b, _, err := formats.EncodeHeader(order, md(strings.Repeat("1", digestLen)))
	if err != nil {
		return nil, err
	}
	if len(a) != len(b) {
		return nil, fmt.Errorf("internal error: provenance slots changed the header length")
	}
	sh := &slotHeader{text: a}
	for i := 0; i < len(a); i++ {
		if a[i] == b[i] {
			continue
		}
		if i+digestLen > len(a) {
			return nil, fmt.Errorf("internal error: a provenance slot runs past the header")
		}
		for j := i; j < i+digestLen; j++ {
			if a[j] != '0' || b[j] != '1' {
				return nil, fmt.Errorf("internal error: a provenance slot is not %d bytes", digestLen)
			}
		}
		sh.slots = append(sh.slots, i)
		i += digestLen - 1
	}
	if len(sh.slots) != nslots {
		return nil, fmt.Errorf("internal error: found %d provenance slots, expected %d", len(sh.slots), nslots)
	}
	return sh, nil
}
