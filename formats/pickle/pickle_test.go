package pickle

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// canon renders a value the way pyCanon (below) renders the Python original.
func canon(v any) string {
	switch x := v.(type) {
	case nil:
		return "N"
	case bool:
		if x {
			return "T"
		}
		return "F"
	case int64:
		return "i" + strconv.FormatInt(x, 10)
	case *big.Int:
		return "i" + x.String()
	case float64:
		return "f" + strconv.FormatFloat(x, 'g', 17, 64)
	case string:
		return "s" + strconv.Quote(x)
	case Bytes:
		return "b" + strconv.Quote(string(x))
	case Tuple:
		return "t(" + canonList(x) + ")"
	case *List:
		return "l[" + canonList(x.Items) + "]"
	case *Set:
		parts := make([]string, len(x.Items))
		for i, e := range x.Items {
			parts[i] = canon(e)
		}
		sort.Strings(parts)
		return "S{" + strings.Join(parts, ",") + "}"
	case *Dict:
		parts := make([]string, len(x.Keys))
		for i, k := range x.Keys {
			parts[i] = canon(k) + ":" + canon(x.Values[i])
		}
		return "d{" + strings.Join(parts, ",") + "}"
	}
	return fmt.Sprintf("?%T", v)
}

func canonList(items []any) string {
	parts := make([]string, len(items))
	for i, e := range items {
		parts[i] = canon(e)
	}
	return strings.Join(parts, ",")
}

const pyProgram = `
import pickle, sys, collections, json
def canon(v):
    if v is None: return "N"
    if v is True: return "T"
    if v is False: return "F"
    if isinstance(v, int): return "i%d" % v
    if isinstance(v, float): return "f" + gofloat(v)
    if isinstance(v, str): return "s" + json.dumps(v, ensure_ascii=False)
    if isinstance(v, (bytes, bytearray)): return "b" + goquote(bytes(v))
    if isinstance(v, tuple): return "t(" + ",".join(canon(e) for e in v) + ")"
    if isinstance(v, list): return "l[" + ",".join(canon(e) for e in v) + "]"
    if isinstance(v, (set, frozenset)): return "S{" + ",".join(sorted(canon(e) for e in v)) + "}"
    if isinstance(v, dict): return "d{" + ",".join(canon(k) + ":" + canon(x) for k, x in v.items()) + "}"
    raise TypeError(type(v))
def gofloat(f):
    r = "%.17g" % f
    if "e" in r:
        m, e = r.split("e"); e = int(e)
        r = "%se%s%02d" % (m, "-" if e < 0 else "+", abs(e))
    return r
def goquote(b):
    out = '"'
    for c in b:
        ch = chr(c)
        if ch == '"': out += '\\"'
        elif ch == '\\': out += '\\\\'
        elif 0x20 <= c < 0x7f: out += ch
        elif ch == '\n': out += '\\n'
        elif ch == '\t': out += '\\t'
        elif ch == '\r': out += '\\r'
        elif ch == '\a': out += '\\a'
        elif ch == '\b': out += '\\b'
        elif ch == '\f': out += '\\f'
        elif ch == '\v': out += '\\v'
        else: out += '\\x%02x' % c
    return out + '"'
shared = [1, 2]
value = collections.OrderedDict([
    ("ints", [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**63 - 1, -2**63, 2**64, -2**100]),
    ("floats", [0.0, -1.5, 1e-300, 3.141592653589793, 1e300]),
    ("text", ["", "a", "h\u00e9llo \u2603", "quote ' and \" and \\\\ and \n"]),
    ("bytes", [b"", b"\x00\x01\xff", bytearray(b"ab")]),
    ("consts", (None, True, False)),
    ("tuples", [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)]),
    ("sets", [set(), {1, 2}, frozenset({"a"})]),
    ("shared", [shared, shared]),
    (7, {"nested": {"deeper": [[[]]]}}),
])
sys.stdout.write(canon(value))
for proto in range(0, 6):
    with open(sys.argv[1] + "/p%d.pkl" % proto, "wb") as f:
        pickle.dump(value, f, protocol=proto)
`

// python3 is Debian's interpreter (the one python3-torch installs into).
func python3(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("python3 not found (scripts/install-test-deps.sh installs it)")
	}
	t.Skip("python3 not found: run scripts/install-test-deps.sh")
	return ""
}

// Pickles written by Python's own pickle module, every protocol, decode to
// the same values (the differential oracle for the machine's opcodes).
func TestPythonPicklesEveryProtocol(t *testing.T) {
	py := python3(t)
	dir := t.TempDir()
	out, err := exec.Command(py, "-c", pyProgram, dir).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	want := string(out)
	for proto := 0; proto <= 5; proto++ {
		data, err := os.ReadFile(fmt.Sprintf("%s/p%d.pkl", dir, proto))
		if err != nil {
			t.Fatal(err)
		}
		res, err := Unpickle(bytes.NewReader(data), 0, DefaultLimits())
		if err != nil {
			t.Fatalf("protocol %d: %v", proto, err)
		}
		if got := canon(res.Value); got != want {
			t.Errorf("protocol %d:\n got %s\nwant %s", proto, got, want)
		}
		if res.End != int64(len(data)) {
			t.Errorf("protocol %d: End %d, want %d", proto, res.End, len(data))
		}
		for _, u := range res.Uses {
			if u.Verdict != Allowed {
				t.Errorf("protocol %d: %s is %s", proto, u.Global, u.Verdict)
			}
		}
	}
}

// Hostile pickles are errors quickly and in bounded memory.
func TestHostilePickles(t *testing.T) {
	var bomb bytes.Buffer
	// Billion laughs: a list of ten references to the previous list, 30 levels.
	bomb.WriteString("\x80\x02]q\x00(")
	for i := 0; i < 10; i++ {
		bomb.WriteString("K\x01")
	}
	bomb.WriteString("e")
	for lvl := 1; lvl <= 30; lvl++ {
		bomb.WriteString("](")
		for i := 0; i < 10; i++ {
			fmt.Fprintf(&bomb, "h%c", byte(lvl-1))
		}
		fmt.Fprintf(&bomb, "eq%c", byte(lvl))
	}
	bomb.WriteString(".")
	deep := "\x80\x02" + strings.Repeat("(", 100000) + "."
	dupBomb := "\x80\x02]" + strings.Repeat("2", 3<<20) + "."
	memo := new(bytes.Buffer)
	memo.WriteString("\x80\x02N")
	for i := 0; i < 512<<10+10; i++ {
		memo.WriteString("r")
		memo.Write([]byte{byte(i), byte(i >> 8), byte(i >> 16), 0})
	}
	memo.WriteString(".")
	hugeString := "\x80\x02\x8d" + "\xff\xff\xff\xff\xff\xff\x00\x00" + "abc."
	for name, data := range map[string][]byte{
		"deep marks":   []byte(deep),
		"dup bomb":     []byte(dupBomb),
		"memo abuse":   memo.Bytes(),
		"huge string":  []byte(hugeString),
		"empty":        nil,
		"no stop":      []byte("\x80\x02K\x01"),
		"get unset":    []byte("\x80\x02h\x05."),
		"bad opcode":   []byte("\x80\x02\xff."),
		"underflow":    []byte("\x80\x02R."),
		"ext registry": []byte("\x80\x02\x82\x01."),
	} {
		start := time.Now()
		_, err := Unpickle(bytes.NewReader(data), 0, DefaultLimits())
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v", name, d)
		}
	}
	// The laughing bomb itself unpickles (it is small); walking it is what
	// explodes, and the walker refuses.
	res, err := Unpickle(bytes.NewReader(bomb.Bytes()), 0, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := Tensors(res.Value); err == nil {
		t.Error("walking a reference bomb did not fail")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("walking the bomb took %v", d)
	}
	_, err = Unpickle(bytes.NewReader([]byte(deep)), 0, DefaultLimits())
	if !errors.Is(err, ErrLimit) {
		t.Errorf("deep nesting: %v is not a limit error", err)
	}
}

// The verdicts: allow-list, code modules, class-shaped names.
func TestClassify(t *testing.T) {
	for g, want := range map[string]Verdict{
		"torch._utils._rebuild_tensor_v2": Allowed,
		"collections.OrderedDict":         Allowed,
		"torch.FloatStorage":              Allowed,
		"torch.bfloat16":                  Allowed,
		"posix.system":                    Code,
		"os.system":                       Code,
		"subprocess.Popen":                Code,
		"builtins.eval":                   Code,
		"__builtin__.getattr":             Code,
		"runpy._run_code":                 Code,
		"webbrowser.open":                 Code,
		"asyncio.unix_events._UnixSubprocessTransport":  Code,
		"torch.utils.collect_env.run":                   Code,
		"torch.load":                                    Code,
		"evil.payload":                                  Code,
		"collections.OrderedDict.fromkeys":              Code,
		"transformers.training_args.TrainingArguments":  Data,
		"__main__.MyNetwork":                            Data,
		"torch.nn.modules.linear.Linear":                Data,
		"deepspeed.runtime.fp16.loss_scaler.LossScaler": Data,
		"numpy.core.multiarray._reconstruct":            Allowed,
	} {
		i := strings.LastIndex(g, ".")
		if g == "collections.OrderedDict.fromkeys" {
			i = len("collections")
		}
		if got := Classify(Global{g[:i], g[i+1:]}); got != want {
			t.Errorf("%s: %s, want %s", g, got, want)
		}
	}
}

func FuzzUnpickle(f *testing.F) {
	f.Add([]byte("\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01u."))
	f.Add([]byte("cposix\nsystem\n(S'echo'\ntR."))
	f.Add([]byte("\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(\x28X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89)tR."))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxElements: 1 << 16, MaxStack: 1 << 12, MaxMemo: 1 << 10, MaxMarks: 1 << 10, MaxString: 1 << 16, MaxBytes: 1 << 20}
		res, err := Unpickle(bytes.NewReader(data), 0, lim)
		if err == nil {
			if _, err := Tensors(res.Value); err != nil {
				return
			}
		}
	})
}
