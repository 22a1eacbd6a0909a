package formats

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/big"

	"github.com/ckpt-tool/ckpt/formats/pickle"
)

// The legacy format (torch.save before 1.6, or _use_new_zipfile_serialization=False):
// pickles one after another — the magic number, the protocol version 1001, a
// sys-info dict, the main pickle, the list of storage keys — then, for each key
// in that order, an 8-byte little-endian element count and the raw bytes.

// torchMagic is the legacy magic number, which must be a literal: a magic
// produced by a call (eval of a string) is a known scanner bypass.
var torchMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// maxExtraPickles bounds how many further pickles of a file that is not a
// torch file are scanned for globals.
const maxExtraPickles = 16

func (r *torchReader) readLegacy(f io.ReaderAt) {
	size := r.file.Size
	pos := int64(0)
	next := func(what string) (*pickle.Result, bool) {
		res, err := pickle.Unpickle(io.NewSectionReader(f, pos, size-pos), pos, pickleLimits)
		r.uses(res, what)
		if err != nil {
			r.fatal(ErrTorchFormat, -1, "%s cannot be read: %v", what, err)
			return res, false
		}
		pos = res.End
		return res, true
	}
	magic, ok := next("the first pickle (magic number)")
	if !ok {
		return
	}
	if !isMagic(magic) {
		what := "is " + pickle.Repr(magic.Value, 60)
		if len(magic.Uses) > 0 {
			what = "is not a literal: it is produced by " + magic.Uses[0].Global.String() + " (a known way to slip a pickle past scanners)"
		}
		r.fatal(ErrTorchFormat, 0, "not a torch.save file: its first pickle %s, not torch's magic number", what)
		// Scan what follows for globals all the same: torch.load would run it.
		for range maxExtraPickles {
			if pos >= size {
				break
			}
			if _, ok := next(fmt.Sprintf("the pickle at byte %d", pos)); !ok {
				break
			}
		}
		return
	}
	proto, ok := next("the protocol pickle")
	if !ok {
		return
	}
	if v, isInt := proto.Value.(int64); !isInt || v != 1001 {
		r.fatal(ErrTorchFormat, magic.End, "legacy protocol version is %s, not 1001", pickle.Repr(proto.Value, 40))
		return
	}
	sys, ok := next("the sys-info pickle")
	if !ok {
		return
	}
	if d, isDict := sys.Value.(*pickle.Dict); isDict {
		if le, found := d.Get("little_endian"); found && le == false {
			r.fatal(ErrTorchFormat, proto.End, "the file was written on a big-endian machine (sys info little_endian=False): not supported")
			return
		}
	}
	main, ok := next("the main pickle")
	if !ok {
		return
	}
	keys, ok := next("the storage-key pickle")
	if !ok {
		return
	}
	list, isList := keys.Value.(*pickle.List)
	if !isList {
		r.fatal(ErrTorchFormat, main.End, "the storage-key pickle is a %s, not a list", pickle.Repr(keys.Value, 40))
		return
	}
	// Element sizes of the root storages, from the main pickle.
	named, _ := pickle.Tensors(main.Value)
	elem := map[string]int64{}
	for _, n := range named {
		k := n.Tensor.Storage.Key
		if n.Tensor.Storage.ViewOf != "" {
			k = n.Tensor.Storage.ViewOf
		}
		elem[k] = torchElemSize(n.Tensor.Storage.DType)
	}
	for _, kv := range list.Items {
		key := pickle.Key(kv)
		var cnt [8]byte
		if pos > size-8 {
			r.fatal(ErrTorchFormat, pos, "storage %q: the file ends before its element count", key)
			break
		}
		if _, err := f.ReadAt(cnt[:], pos); err != nil {
			r.fatal(ErrTorchFormat, pos, "storage %q: cannot read its element count: %v", key, err)
			break
		}
		n := binary.LittleEndian.Uint64(cnt[:])
		es, known := elem[key]
		if !known || es == 0 {
			r.fatal(ErrTorchFormat, pos, "storage %q is listed but no tensor says its type, so its length is unknown", key)
			break
		}
		if n > uint64(size)/uint64(es) || int64(n)*es > size-pos-8 {
			r.fatal(ErrTorchFormat, pos, "storage %q declares %d elements, which run past the end of the %d-byte file", key, n, size)
			break
		}
		r.storages[key] = storageBytes{pos + 8, int64(n) * es, fmt.Sprintf("the storage area of %q", key)}
		pos += 8 + int64(n)*es
	}
	if pos < size && r.file.Err == nil {
		r.problem(SevWarning, ErrTorchFormat, "", pos, "%d bytes after the last storage", size-pos)
	}
	r.file.Pickled = main.Value
	r.locate(main.Value)
}

func isMagic(res *pickle.Result) bool {
	if len(res.Uses) > 0 {
		return false
	}
	b, ok := res.Value.(*big.Int)
	return ok && b.Cmp(torchMagic) == 0
}
