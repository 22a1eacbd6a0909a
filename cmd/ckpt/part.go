package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Partial results: `ckpt scan --part K/N` and `ckpt bisect --pairs-part K/N`
// write one part of a job as JSON, and `ckpt merge` combines the parts into the
// report one process would have written (see docs/cluster.md). A part carries
// the exact state of what it computed (accumulators, float64 values written so
// that they read back to the bit) and the identity of every file it read, so
// that merge can refuse parts that do not belong together.

// partFormat is the version of the part file format (2: scan parts carry
// --update-warn, for the optimizer view the merge computes).
const partFormat = 2

// Kinds of part files.
const (
	partKindScan   = "ckpt-scan-part"
	partKindBisect = "ckpt-bisect-part"
)

// parsePart parses a --part value "K/N" (0 ≤ K < N).
func parsePart(flag, s string) (k, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	if ok {
		k, err = strconv.Atoi(a)
		if err == nil {
			n, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, usagef("give K/N with 0 <= K < N, e.g. --"+flag+" 0/4 (with Slurm: --"+flag+" $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)",
			"--%s %q: want K/N, a part number K from 0 to N-1 out of N parts", flag, s)
	}
	return k, n, nil
}

// exactFloat is a float64 written in JSON as a string that parses back to the
// same bits ("+Inf", "-Inf" and "NaN" included, which JSON numbers cannot hold).
type exactFloat float64

func (f exactFloat) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatFloat(float64(f), 'g', -1, 64))
}

func (f *exactFloat) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a float must be written as a string: %w", err)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("bad float %q", s)
	}
	*f = exactFloat(v)
	return nil
}

// partAcc is an inspect.Acc as a part carries it: every field, exactly.
type partAcc struct {
	Count     uint64     `json:"count"`
	NaN       uint64     `json:"nan"`
	PosInf    uint64     `json:"posinf"`
	NegInf    uint64     `json:"neginf"`
	Zeros     uint64     `json:"zeros"`
	Subnormal uint64     `json:"subnormal"`
	Finite    uint64     `json:"finite"`
	Min       exactFloat `json:"min"`
	Max       exactFloat `json:"max"`
	AbsMax    exactFloat `json:"absmax"`
	Mean      exactFloat `json:"mean"`
	M2        exactFloat `json:"m2"`
	SumSq     exactFloat `json:"sumsq"`
	FirstBad  int64      `json:"first_bad"`
}

func toPartAcc(a inspect.Acc) partAcc {
	return partAcc{Count: a.Count, NaN: a.NaN, PosInf: a.PosInf, NegInf: a.NegInf, Zeros: a.Zeros, Subnormal: a.Subnormal,
		Finite: a.Finite, Min: exactFloat(a.Min), Max: exactFloat(a.Max), AbsMax: exactFloat(a.AbsMax), Mean: exactFloat(a.Mean),
		M2: exactFloat(a.M2), SumSq: exactFloat(a.SumSq), FirstBad: a.FirstBad}
}

func (p partAcc) acc() inspect.Acc {
	return inspect.Acc{Count: p.Count, NaN: p.NaN, PosInf: p.PosInf, NegInf: p.NegInf, Zeros: p.Zeros, Subnormal: p.Subnormal,
		Finite: p.Finite, Min: float64(p.Min), Max: float64(p.Max), AbsMax: float64(p.AbsMax), Mean: float64(p.Mean),
		M2: float64(p.M2), SumSq: float64(p.SumSq), FirstBad: p.FirstBad}
}

// partFile is the identity of one file of a checkpoint when a part opened it:
// its size, modification time and a digest of its header bytes (the
// safetensors header, or the first MiB of another container).
type partFile struct {
	Path       string `json:"path"`
	Bytes      int64  `json:"bytes"`
	ModTimeNS  int64  `json:"mtime_ns"`
	HeadSHA256 string `json:"head_sha256"`
}

// headDigestMax bounds the bytes hashed when a file has no parsed header.
const headDigestMax = 1 << 20

// fileIdentities describes every file of c as it is now.
func fileIdentities(c *formats.Checkpoint) ([]partFile, error) {
	out := make([]partFile, 0, len(c.Files))
	for _, f := range c.Files {
		pf := partFile{Path: f.Path, Bytes: f.Size}
		if f.Info != nil {
			pf.ModTimeNS = f.Info.ModTime().UnixNano()
		}
		n := min(f.Size, headDigestMax)
		if f.Header != nil {
			n = min(f.Size, f.Header.DataStart())
		}
		d, err := headDigest(f.Path, n)
		if err != nil {
			return nil, err
		}
		pf.HeadSHA256 = d
		out = append(out, pf)
	}
	return out, nil
}

// headDigest is the SHA-256 of the first n bytes of the file at path.
func headDigest(path string, n int64) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, fh, n); err != nil {
		return "", fmt.Errorf("%s: reading its header to record it: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sameFiles compares the file identities two parts (or a part and the
// checkpoint as it is now) recorded and says how they differ, "" when they
// do not.
func sameFiles(a, b []partFile) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d files against %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		switch {
		case x.Path != y.Path:
			return fmt.Sprintf("file %d is %s against %s", i+1, x.Path, y.Path)
		case x.Bytes != y.Bytes:
			return fmt.Sprintf("%s is %d bytes against %d", x.Path, x.Bytes, y.Bytes)
		case x.ModTimeNS != y.ModTimeNS:
			return fmt.Sprintf("%s was modified in between (modification times differ)", x.Path)
		case x.HeadSHA256 != y.HeadSHA256:
			return fmt.Sprintf("%s has a different header", x.Path)
		}
	}
	return ""
}

// partThresholds are the scan's outlier rules, recorded so that merge applies
// the rules the parts were run with.
type partThresholds struct {
	HugeAbs           exactFloat `json:"huge_abs"`
	RoleMinMembers    int        `json:"role_min_members"`
	RoleMinElements   int        `json:"role_min_elements"`
	MinSpread         exactFloat `json:"min_spread"`
	OutlierWarnZ      exactFloat `json:"outlier_warn_z"`
	OutlierWarnRatio  exactFloat `json:"outlier_warn_ratio"`
	OutlierErrorZ     exactFloat `json:"outlier_error_z"`
	OutlierErrorRatio exactFloat `json:"outlier_error_ratio"`
	ZeroMatrixError   bool       `json:"zero_matrix_error"`
	TargetDType       string     `json:"target_dtype"`
	// UpdateWarn is the optimizer's predicted-update threshold (--update-warn).
	UpdateWarn exactFloat `json:"update_warn"`
}

func toPartThresholds(th inspect.Thresholds, target formats.DType, updateWarn float64) partThresholds {
	return partThresholds{UpdateWarn: exactFloat(updateWarn), HugeAbs: exactFloat(th.HugeAbs), RoleMinMembers: th.RoleMinMembers, RoleMinElements: th.RoleMinElements,
		MinSpread: exactFloat(th.MinSpread), OutlierWarnZ: exactFloat(th.OutlierWarnZ), OutlierWarnRatio: exactFloat(th.OutlierWarnRatio),
		OutlierErrorZ: exactFloat(th.OutlierErrorZ), OutlierErrorRatio: exactFloat(th.OutlierErrorRatio), ZeroMatrixError: th.ZeroMatrixError,
		TargetDType: string(target)}
}

func (p partThresholds) thresholds() (inspect.Thresholds, formats.DType) {
	return inspect.Thresholds{HugeAbs: float64(p.HugeAbs), RoleMinMembers: p.RoleMinMembers, RoleMinElements: p.RoleMinElements,
		MinSpread: float64(p.MinSpread), OutlierWarnZ: float64(p.OutlierWarnZ), OutlierWarnRatio: float64(p.OutlierWarnRatio),
		OutlierErrorZ: float64(p.OutlierErrorZ), OutlierErrorRatio: float64(p.OutlierErrorRatio), ZeroMatrixError: p.ZeroMatrixError,
	}, formats.DType(p.TargetDType)
}
