package hostile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
)

// PyTorch cases: pickles that are bombs or run code, and torch.save zips
// whose records are compressed, duplicated, past the end or flagged.

// pickleStr is a BINUNICODE string.
func pickleStr(s string) string {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
	return "X" + string(n[:]) + s
}

// TensorPickle is a protocol-2 data.pkl of {"w": a float32 tensor of n
// elements in storage "0"}, as torch.save writes it; payload, when not
// empty, is pickle code run first (its result dropped).
func TensorPickle(n int, payload string) []byte {
	var b strings.Builder
	b.WriteString("\x80\x02")
	b.WriteString(payload)
	b.WriteString("}(" + pickleStr("w"))
	b.WriteString("ctorch._utils\n_rebuild_tensor_v2\n(")
	b.WriteString("(" + pickleStr("storage") + "ctorch\nFloatStorage\n" + pickleStr("0") + pickleStr("cpu") + fmt.Sprintf("K%ctQ", byte(n)))
	b.WriteString(fmt.Sprintf("K\x00K%c\x85K\x01\x85\x89", byte(n)))
	b.WriteString("ccollections\nOrderedDict\n)RtRu.")
	return []byte(b.String())
}

// SystemPayload is pickle code that calls posix.system(cmd) and drops the result.
func SystemPayload(cmd string) string {
	return "cposix\nsystem\n(" + pickleStr(cmd) + "tR0"
}

// ZipRecord is one record of a torch zip.
type ZipRecord struct {
	Name     string
	Data     []byte
	Compress bool
}

// TorchZip writes records as a zip archive (stored, sizes in the local
// headers), the way torch.save lays them out.
func TorchZip(recs []ZipRecord) ([]byte, error) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, r := range recs {
		if r.Compress {
			f, err := w.CreateHeader(&zip.FileHeader{Name: r.Name, Method: zip.Deflate})
			if err != nil {
				return nil, err
			}
			if _, err := f.Write(r.Data); err != nil {
				return nil, err
			}
			continue
		}
		h := &zip.FileHeader{Name: r.Name, Method: zip.Store, CRC32: crc32.ChecksumIEEE(r.Data),
			CompressedSize64: uint64(len(r.Data)), UncompressedSize64: uint64(len(r.Data))}
		f, err := w.CreateRaw(h)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(r.Data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// validTorchRecords is a minimal valid torch zip: a 4-element tensor.
func validTorchRecords(payload string) []ZipRecord {
	data := make([]byte, 16)
	for i := range 4 {
		binary.LittleEndian.PutUint32(data[4*i:], 0x3f800000) // 1.0
	}
	return []ZipRecord{
		{Name: "archive/data.pkl", Data: TensorPickle(4, payload)},
		{Name: "archive/data/0", Data: data},
		{Name: "archive/version", Data: []byte("3\n")},
	}
}

// WriteTorchMalicious writes a torch zip whose pickle would run cmd through
// posix.system, and a legacy-format file that would do the same.
func WriteTorchMalicious(zipPath, legacyPath, cmd string) error {
	b, err := TorchZip(validTorchRecords(SystemPayload(cmd)))
	if err != nil {
		return err
	}
	if err := os.WriteFile(zipPath, b, 0o644); err != nil {
		return err
	}
	legacy := "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19." + "\x80\x02M\xe9\x03." + "\x80\x02}." +
		"\x80\x02" + SystemPayload(cmd) + "N." + "\x80\x02]."
	return os.WriteFile(legacyPath, []byte(legacy), 0o644)
}

// setZipFlag sets flag bits on every local and central header.
func setZipFlag(b []byte, bit uint16) []byte {
	out := append([]byte(nil), b...)
	for i := 0; i+8 < len(out); i++ {
		switch string(out[i : i+4]) {
		case "PK\x03\x04":
			f := binary.LittleEndian.Uint16(out[i+6:])
			binary.LittleEndian.PutUint16(out[i+6:], f|bit)
		case "PK\x01\x02":
			f := binary.LittleEndian.Uint16(out[i+8:])
			binary.LittleEndian.PutUint16(out[i+8:], f|bit)
		}
	}
	return out
}

// setRecordSize declares size for a record in the central directory (both
// its compressed and uncompressed sizes).
func setRecordSize(b []byte, name string, size uint32) []byte {
	out := append([]byte(nil), b...)
	for i := 0; i+46 < len(out); i++ {
		if string(out[i:i+4]) != "PK\x01\x02" {
			continue
		}
		n := int(binary.LittleEndian.Uint16(out[i+28:]))
		if i+46+n <= len(out) && string(out[i+46:i+46+n]) == name {
			binary.LittleEndian.PutUint32(out[i+20:], size)
			binary.LittleEndian.PutUint32(out[i+24:], size)
		}
	}
	return out
}

// torchCases adds the PyTorch cases.
func (g *gen) torchCases() {
	zipOf := func(recs []ZipRecord) []byte {
		b, err := TorchZip(recs)
		if err != nil && g.err == nil {
			g.err = err
		}
		return b
	}
	good := zipOf(validTorchRecords(""))
	// Pickle bombs and abuse, as bare pickles under a .pt name.
	g.torchFile("torch-pickle-dup-bomb", []byte("\x80\x02]"+strings.Repeat("2", 3<<20)+"."))
	g.torchFile("torch-pickle-deep-nesting", []byte("\x80\x02"+strings.Repeat("(", 100000)+"."))
	var memo bytes.Buffer
	memo.WriteString("\x80\x02N")
	for i := 0; i < 600<<10; i++ {
		memo.WriteString("r")
		memo.Write([]byte{byte(i), byte(i >> 8), byte(i >> 16), 0})
	}
	memo.WriteString(".")
	g.torchFile("torch-pickle-memo-abuse", memo.Bytes())
	var laugh bytes.Buffer
	laugh.WriteString("\x80\x02]q\x00(K\x01K\x01e")
	for lvl := 1; lvl <= 40; lvl++ {
		fmt.Fprintf(&laugh, "](h%ch%ceq%c", byte(lvl-1), byte(lvl-1), byte(lvl))
	}
	laugh.WriteString(".")
	recs := validTorchRecords("")
	recs[0].Data = laugh.Bytes()
	g.torchFile("torch-pickle-reference-bomb", zipOf(recs))
	g.torchFile("torch-pickle-system", zipOf(validTorchRecords(SystemPayload("echo pwned"))))
	// Zip records.
	g.torchFile("torch-zip-record-past-end", setRecordSize(good, "archive/data/0", 1<<20))
	g.torchFile("torch-zip-truncated-directory", good[:len(good)-10])
	recs = validTorchRecords("")
	recs[1].Compress = true
	g.torchFile("torch-zip-compressed-storage", zipOf(recs))
	recs = validTorchRecords("")
	recs[0].Compress = true
	g.torchFile("torch-zip-compressed-pickle", zipOf(recs))
	recs = validTorchRecords("")
	recs = append(recs, ZipRecord{Name: "archive/data/0", Data: make([]byte, 16)})
	g.torchFile("torch-zip-duplicate-record", zipOf(recs))
	recs = validTorchRecords("")
	g.torchFile("torch-zip-missing-storage", zipOf([]ZipRecord{recs[0], recs[2]}))
	recs = validTorchRecords("")
	recs[1].Data = recs[1].Data[:8]
	g.torchFile("torch-zip-short-storage", zipOf(recs))
	recs = validTorchRecords("")
	recs = append(recs, ZipRecord{Name: "archive/byteorder", Data: []byte("big")})
	g.torchFile("torch-zip-big-endian", zipOf(recs))
	g.torchFile("torch-zip-encrypted-flag", setZipFlag(zipOf(validTorchRecords(SystemPayload("id"))), 1))
	g.torchFile("torch-not-torch", []byte("\x89PNG\r\n\x1a\n"))
}

// torchFile adds a hostile PyTorch file: like a malformed safetensors file,
// every command that reads it reports an error finding (check "pickle" for a
// pickle that names code, "format" otherwise).
func (g *gen) torchFile(name string, content []byte) {
	if g.err != nil {
		return
	}
	p := filepath.Join(g.dir, name+".pt")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		g.err = err
		return
	}
	check := "format"
	if name == "torch-pickle-system" || name == "torch-zip-encrypted-flag" {
		check = "pickle"
	}
	c := malformed
	c.Inspect, c.Scan, c.Bisect = Expect{1, check}, Expect{1, check}, Expect{1, check}
	c.Name, c.Path = name, p
	g.cases = append(g.cases, c)
}
