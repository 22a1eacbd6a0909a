package formats

import (
	"bytes"
	"encoding/binary"
	"io"
	"sort"
	"strings"

	"github.com/ckpt-tool/ckpt/formats/pickle"
)

// The zip format torch.save writes since 1.6: one folder (archive/, or the
// file's stem) holding data.pkl, data/<key> per storage, version and, in newer
// files, byteorder, .data/serialization_id, .format_version and
// .storage_alignment. Every record is stored (not compressed) and its data
// aligned to 64 bytes by padding the local header's extra field. We read the
// central directory, check each local header against it, and locate every
// storage by offset; nothing but data.pkl and the small text records is read.

// zipRecord is one central-directory entry, checked against its local header.
type zipRecord struct {
	name       string
	method     uint16
	flags      uint16
	size       int64 // uncompressed size
	csize      int64
	local      int64 // local header offset
	dataOff    int64 // absolute offset of the record's bytes, -1 when unknown
	headerOK   bool
	duplicated bool
}

// Limits of the zip reader.
const (
	maxZipRecords = 1 << 20
	maxZipCD      = 256 << 20
)

// readZipDirectory reads the central directory of a zip file of the given
// size. It returns the records, or an error message and offset.
func readZipDirectory(ra io.ReaderAt, size int64) ([]*zipRecord, string, int64) {
	// End of central directory: 22 bytes plus a comment of up to 64 KiB.
	tail := min(size, 22+65535)
	buf := make([]byte, tail)
	if _, err := ra.ReadAt(buf, size-tail); err != nil && err != io.EOF {
		return nil, "cannot read the end of the zip archive: " + err.Error(), -1
	}
	i := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if i < 0 || len(buf)-i < 22 {
		return nil, "zip archive without an end-of-central-directory record (truncated?)", -1
	}
	eocd := buf[i:]
	eocdOff := size - tail + int64(i)
	count := int64(binary.LittleEndian.Uint16(eocd[10:]))
	cdSize := int64(binary.LittleEndian.Uint32(eocd[12:]))
	cdOff := int64(binary.LittleEndian.Uint32(eocd[16:]))
	if count == 0xFFFF || cdSize == 0xFFFFFFFF || cdOff == 0xFFFFFFFF {
		// ZIP64: the locator sits just before the end record.
		if eocdOff < 20 {
			return nil, "zip64 archive without its locator", eocdOff
		}
		var loc [20]byte
		if _, err := ra.ReadAt(loc[:], eocdOff-20); err != nil || string(loc[:4]) != "PK\x06\x07" {
			return nil, "zip64 archive without its locator", eocdOff - 20
		}
		recOff := int64(binary.LittleEndian.Uint64(loc[8:]))
		var rec [56]byte
		if recOff < 0 || recOff > size-56 {
			return nil, "zip64 end record lies past the end of the file", eocdOff - 20
		}
		if _, err := ra.ReadAt(rec[:], recOff); err != nil || string(rec[:4]) != "PK\x06\x06" {
			return nil, "zip64 end record is missing", recOff
		}
		count = int64(binary.LittleEndian.Uint64(rec[32:]))
		cdSize = int64(binary.LittleEndian.Uint64(rec[40:]))
		cdOff = int64(binary.LittleEndian.Uint64(rec[48:]))
	}
	if count < 0 || count > maxZipRecords {
		return nil, "zip archive declares too many records", eocdOff
	}
	if cdOff < 0 || cdSize < 0 || cdSize > maxZipCD || cdOff > size || cdSize > size-cdOff {
		return nil, "zip central directory lies past the end of the file", eocdOff
	}
	cd := make([]byte, cdSize)
	if _, err := ra.ReadAt(cd, cdOff); err != nil {
		return nil, "cannot read the zip central directory: " + err.Error(), cdOff
	}
	var recs []*zipRecord
	p := 0
	for k := int64(0); k < count; k++ {
		if len(cd)-p < 46 || string(cd[p:p+4]) != "PK\x01\x02" {
			return recs, "zip central directory entry is malformed", cdOff + int64(p)
		}
		h := cd[p:]
		nameLen := int(binary.LittleEndian.Uint16(h[28:]))
		extraLen := int(binary.LittleEndian.Uint16(h[30:]))
		commentLen := int(binary.LittleEndian.Uint16(h[32:]))
		if len(h) < 46+nameLen+extraLen+commentLen {
			return recs, "zip central directory entry runs past the directory", cdOff + int64(p)
		}
		r := &zipRecord{
			name:   string(h[46 : 46+nameLen]),
			flags:  binary.LittleEndian.Uint16(h[8:]),
			method: binary.LittleEndian.Uint16(h[10:]),
			csize:  int64(binary.LittleEndian.Uint32(h[20:])),
			size:   int64(binary.LittleEndian.Uint32(h[24:])),
			local:  int64(binary.LittleEndian.Uint32(h[42:])), dataOff: -1,
		}
		extra := h[46+nameLen : 46+nameLen+extraLen]
		for len(extra) >= 4 {
			id := binary.LittleEndian.Uint16(extra)
			n := int(binary.LittleEndian.Uint16(extra[2:]))
			if n > len(extra)-4 {
				break
			}
			if id == 1 { // zip64 extended information, in this order, each only if needed
				f := extra[4 : 4+n]
				next := func(v *int64) {
					if *v == 0xFFFFFFFF && len(f) >= 8 {
						*v = int64(binary.LittleEndian.Uint64(f))
						f = f[8:]
					}
				}
				next(&r.size)
				next(&r.csize)
				next(&r.local)
			}
			extra = extra[4+n:]
		}
		recs = append(recs, r)
		p += 46 + nameLen + extraLen + commentLen
	}
	return recs, "", -1
}

// readZip reads a torch zip file.
func (r *torchReader) readZip(f io.ReaderAt) {
	size := r.file.Size
	recs, msg, off := readZipDirectory(f, size)
	if msg != "" {
		r.fatal(ErrTorchFormat, off, "%s", msg)
		return
	}
	// Check each local header against the central directory.
	byName := map[string]*zipRecord{}
	for _, rec := range recs {
		if prev, dup := byName[rec.name]; dup {
			prev.duplicated = true
			r.problem(SevError, ErrTorchFormat, "", rec.local, "zip record %q appears more than once; readers disagree on which copy they use", rec.name)
			continue
		}
		byName[rec.name] = rec
		var lh [30]byte
		if rec.local < 0 || rec.local > size-30 {
			r.problem(SevError, ErrTorchFormat, "", rec.local, "zip record %q: its local header lies past the end of the file", rec.name)
			continue
		}
		if _, err := f.ReadAt(lh[:], rec.local); err != nil || string(lh[:4]) != "PK\x03\x04" {
			r.problem(SevError, ErrTorchFormat, "", rec.local, "zip record %q: no local header where the central directory points", rec.name)
			continue
		}
		nameLen := int64(binary.LittleEndian.Uint16(lh[26:]))
		extraLen := int64(binary.LittleEndian.Uint16(lh[28:]))
		lname := make([]byte, nameLen)
		if _, err := f.ReadAt(lname, rec.local+30); err != nil || string(lname) != rec.name {
			r.problem(SevError, ErrTorchFormat, "", rec.local, "zip record %q: its local header names %q", rec.name, lname)
			continue
		}
		if m := binary.LittleEndian.Uint16(lh[8:]); m != rec.method {
			r.problem(SevError, ErrTorchFormat, "", rec.local, "zip record %q: local header says method %d, central directory %d", rec.name, m, rec.method)
			continue
		}
		rec.dataOff = rec.local + 30 + nameLen + extraLen
		if rec.flags&1 != 0 {
			r.problem(SevWarning, ErrTorchFormat, "", rec.local,
				"zip record %q has the encrypted flag set although it is not encrypted: torch reads it, Python's zipfile refuses it (a trick to hide a pickle from scanners); ckpt read it", rec.name)
		}
		if rec.method != 0 {
			r.problem(SevError, ErrTorchFormat, "", rec.local, "zip record %q is compressed (method %d): torch.save stores records uncompressed and torch.load cannot map it", rec.name, rec.method)
			continue
		}
		if rec.csize != rec.size {
			r.problem(SevError, ErrTorchFormat, "", rec.local, "zip record %q is stored but its sizes differ (%d and %d)", rec.name, rec.csize, rec.size)
			continue
		}
		if rec.dataOff > size || rec.size > size-rec.dataOff {
			r.problem(SevError, ErrTorchFormat, "", rec.dataOff, "zip record %q (%d bytes at %d) runs past the end of the %d-byte file", rec.name, rec.size, rec.dataOff, size)
			continue
		}
		rec.headerOK = true
	}
	// Overlapping records (each record's bytes, header included).
	ok := make([]*zipRecord, 0, len(recs))
	for _, rec := range recs {
		if rec.headerOK && !rec.duplicated && byName[rec.name] == rec {
			ok = append(ok, rec)
		}
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].local < ok[j].local })
	for i := 1; i < len(ok); i++ {
		if prev := ok[i-1]; prev.dataOff+prev.size > ok[i].local {
			r.problem(SevError, ErrTorchFormat, "", ok[i].local, "zip records %q and %q overlap", prev.name, ok[i].name)
			ok[i].headerOK, prev.headerOK = false, false
		}
	}
	// The pickle: <prefix>/data.pkl.
	var pkl *zipRecord
	for _, rec := range recs {
		if strings.HasSuffix(rec.name, "data.pkl") && strings.Count(rec.name, "/") == 1 && strings.HasSuffix(rec.name, "/data.pkl") {
			if pkl != nil && pkl.name != rec.name {
				r.problem(SevError, ErrTorchFormat, "", rec.local, "zip archive holds two pickles, %q and %q", pkl.name, rec.name)
				continue
			}
			if pkl == nil {
				pkl = rec
			}
		}
	}
	if pkl == nil {
		r.fatal(ErrTorchFormat, -1, "zip archive without a <name>/data.pkl record: not a torch.save file")
		return
	}
	prefix := strings.TrimSuffix(pkl.name, "data.pkl")
	r.where = prefix + "data/"
	if !pkl.headerOK {
		r.fatal(ErrTorchFormat, pkl.local, "its pickle record %q cannot be read (see the other findings)", pkl.name)
		return
	}
	if bo, ok := byName[prefix+"byteorder"]; ok && bo.headerOK && bo.size < 16 {
		b := make([]byte, bo.size)
		if _, err := f.ReadAt(b, bo.dataOff); err == nil && strings.TrimSpace(string(b)) != "little" {
			r.fatal(ErrTorchFormat, bo.dataOff, "record %q says the byte order is %q: big-endian files are not supported", bo.name, b)
			return
		}
	}
	if pkl.size > maxPickleBytes {
		r.fatal(ErrTorchFormat, pkl.dataOff, "pickle record %q is %d bytes, above the %d-byte limit", pkl.name, pkl.size, maxPickleBytes)
		return
	}
	for _, rec := range recs {
		if k, isData := strings.CutPrefix(rec.name, prefix+"data/"); isData && rec.headerOK && byName[rec.name] == rec {
			r.storages[k] = storageBytes{rec.dataOff, rec.size, rec.name}
			if rec.dataOff%64 != 0 {
				r.problem(SevInfo, ErrTorchFormat, "", rec.dataOff, "zip record %q is not 64-byte aligned (torch.save aligns storages; readers still accept it)", rec.name)
			}
		}
	}
	res, err := pickle.Unpickle(io.NewSectionReader(f, pkl.dataOff, pkl.size), pkl.dataOff, pickleLimits)
	r.uses(res, pkl.name)
	if err != nil {
		r.fatal(ErrTorchFormat, -1, "pickle %q cannot be read: %v", pkl.name, err)
		return
	}
	r.file.Pickled = res.Value
	r.locate(res.Value)
}
