package pickle

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Limits bound what one pickle may make the machine hold.
type Limits struct {
	MaxElements int   // values created plus items added to containers
	MaxStack    int   // values on the stack at once
	MaxMemo     int   // memo entries
	MaxMarks    int   // nested MARKs
	MaxString   int64 // bytes of one string or bytes value
	MaxBytes    int64 // bytes of all strings and bytes values together
}

// DefaultLimits fit the largest real state dicts with a wide margin (a
// 10,000-tensor state dict builds about 200,000 elements and memoizes
// 100,000; pickle batches container items by 1,000, so the stack stays
// small) and keep a hostile pickle to a fraction of a second and about
// 100 MB besides its strings.
func DefaultLimits() Limits {
	return Limits{MaxElements: 2 << 20, MaxStack: 256 << 10, MaxMemo: 512 << 10, MaxMarks: 1 << 16, MaxString: 64 << 20, MaxBytes: 256 << 20}
}

// Use is one global a pickle names, at its first occurrence, with the
// constant arguments of its first call when it is called.
type Use struct {
	Global  Global
	Verdict Verdict
	Offset  int64  // absolute byte offset of the GLOBAL/STACK_GLOBAL/INST opcode
	Called  bool   // REDUCE/NEWOBJ/INST/OBJ applied it
	Args    string // its constant arguments as in the file (escaped), when called
}

// Result is an unpickled value and what the pickle named.
type Result struct {
	Value    any
	Uses     []Use // in order of first occurrence
	End      int64 // absolute offset just past STOP
	Protocol int
}

// Error is a pickle the machine could not (or would not) run to STOP.
type Error struct {
	Offset int64 // absolute offset of the opcode
	Msg    string
	Limit  bool // raised by a limit
}

func (e *Error) Error() string { return fmt.Sprintf("%s (at byte %d)", e.Msg, e.Offset) }

// ErrLimit marks errors raised by a limit (a pickle bomb, deep nesting, memo abuse).
var ErrLimit = errors.New("pickle exceeds a limit")

// Unwrap gives ErrLimit for an error raised by a limit.
func (e *Error) Unwrap() error {
	if e.Limit {
		return ErrLimit
	}
	return nil
}

// mark is the MARK sentinel on the stack.
type mark struct{}

type machine struct {
	in       *bufio.Reader
	base     int64
	pos      int64 // bytes consumed
	op       int64 // offset of the current opcode
	lim      Limits
	stack    []any
	marks    []int
	memo     map[int64]any
	elements int
	strBytes int64
	uses     []Use
	useIdx   map[string]int
	proto    int
}

// Unpickle runs one pickle from r (whose first byte is at absolute offset base
// in its file) to its STOP. It never imports or calls anything. On an error the
// Result still lists the globals named before it.
func Unpickle(r io.Reader, base int64, lim Limits) (*Result, error) {
	m := &machine{in: bufio.NewReaderSize(r, 64<<10), base: base, lim: lim, memo: map[int64]any{}, useIdx: map[string]int{}}
	v, err := m.run()
	res := &Result{Value: v, Uses: m.uses, End: base + m.pos, Protocol: m.proto}
	return res, err
}

func (m *machine) fail(format string, args ...any) error {
	return &Error{Offset: m.base + m.op, Msg: fmt.Sprintf(format, args...)}
}

func (m *machine) limit(format string, args ...any) error {
	return &Error{Offset: m.base + m.op, Msg: fmt.Sprintf(format, args...), Limit: true}
}

func (m *machine) count(n int) error {
	m.elements += n
	if m.elements > m.lim.MaxElements {
		return m.limit("the pickle builds more than %d elements (a pickle bomb?)", m.lim.MaxElements)
	}
	return nil
}

func (m *machine) push(v any) error {
	if len(m.stack) >= m.lim.MaxStack {
		return m.limit("the stack exceeds %d values (a pickle bomb?)", m.lim.MaxStack)
	}
	m.stack = append(m.stack, v)
	return m.count(1)
}

func (m *machine) pop() (any, error) {
	n := len(m.stack)
	if n == 0 || (len(m.marks) > 0 && m.marks[len(m.marks)-1] == n) {
		return nil, m.fail("stack underflow")
	}
	v := m.stack[n-1]
	m.stack = m.stack[:n-1]
	return v, nil
}

func (m *machine) top() (any, error) {
	n := len(m.stack)
	if n == 0 || (len(m.marks) > 0 && m.marks[len(m.marks)-1] == n) {
		return nil, m.fail("stack underflow")
	}
	return m.stack[n-1], nil
}

// popMark pops everything above the last MARK.
func (m *machine) popMark() ([]any, error) {
	if len(m.marks) == 0 {
		return nil, m.fail("no MARK on the stack")
	}
	k := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	items := append([]any(nil), m.stack[k:]...)
	m.stack = m.stack[:k]
	return items, nil
}

func (m *machine) byte1() (byte, error) {
	b, err := m.in.ReadByte()
	if err != nil {
		return 0, m.fail("the pickle ends before STOP")
	}
	m.pos++
	return b, nil
}

func (m *machine) read(n int64) ([]byte, error) {
	if n < 0 || n > m.lim.MaxString {
		return nil, m.limit("a %d-byte value exceeds the %d-byte limit", n, m.lim.MaxString)
	}
	m.strBytes += n
	if m.strBytes > m.lim.MaxBytes {
		return nil, m.limit("strings and bytes exceed %d bytes in total", m.lim.MaxBytes)
	}
	// Read in pieces so that a length beyond the end of the input allocates
	// only what is there.
	var out []byte
	for int64(len(out)) < n {
		k := min(n-int64(len(out)), 1<<20)
		buf := make([]byte, k)
		got, err := io.ReadFull(m.in, buf)
		m.pos += int64(got)
		out = append(out, buf[:got]...)
		if err != nil {
			return nil, m.fail("the pickle ends inside a %d-byte value", n)
		}
	}
	return out, nil
}

func (m *machine) uint(n int) (uint64, error) {
	b, err := m.read(int64(n))
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// line reads a protocol-0 text argument up to its newline.
func (m *machine) line() (string, error) {
	var b []byte
	for {
		c, err := m.byte1()
		if err != nil {
			return "", err
		}
		if c == '\n' {
			return string(b), nil
		}
		if len(b) >= 1<<16 {
			return "", m.limit("a text argument longer than 64 KiB")
		}
		b = append(b, c)
	}
}

// memoKey reads the memo key of a PUT/GET opcode: text for protocol 0, one
// byte for the BIN forms, four for the LONG_BIN forms.
func (m *machine) memoKey(op byte) (int64, error) {
	switch op {
	case 'p', 'g':
		s, err := m.line()
		if err != nil {
			return 0, err
		}
		k, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil {
			return 0, m.fail("bad memo key %q", s)
		}
		return k, nil
	case 'q', 'h':
		k, err := m.uint(1)
		return int64(k), err
	}
	k, err := m.uint(4)
	return int64(k), err
}

func (m *machine) memoPut(k int64) error {
	v, err := m.top()
	if err != nil {
		return err
	}
	if _, ok := m.memo[k]; !ok && len(m.memo) >= m.lim.MaxMemo {
		return m.limit("the memo exceeds %d entries", m.lim.MaxMemo)
	}
	m.memo[k] = v
	return nil
}

func (m *machine) memoGet(k int64) error {
	v, ok := m.memo[k]
	if !ok {
		return m.fail("memo key %d was never stored", k)
	}
	return m.push(v)
}

// global records a global and pushes the reference.
func (m *machine) global(g Global) error {
	key := g.String()
	if _, ok := m.useIdx[key]; !ok {
		m.useIdx[key] = len(m.uses)
		m.uses = append(m.uses, Use{Global: g, Verdict: Classify(g), Offset: m.base + m.op})
	}
	return m.push(g)
}

// called notes the first call of a global with its arguments.
func (m *machine) called(g Global, args []any) {
	i, ok := m.useIdx[g.String()]
	if !ok || m.uses[i].Called {
		return
	}
	m.uses[i].Called = true
	m.uses[i].Args = Repr(Tuple(args), 300)
}

func (m *machine) run() (any, error) {
	for {
		m.op = m.pos
		op, err := m.byte1()
		if err != nil {
			return nil, err
		}
		if op == '.' { // STOP
			v, err := m.pop()
			return v, err
		}
		if err := m.step(op); err != nil {
			return nil, err
		}
	}
}

func (m *machine) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		b, err := m.byte1()
		if err != nil {
			return err
		}
		if b > 5 {
			return m.fail("unsupported pickle protocol %d", b)
		}
		m.proto = int(b)
		return nil
	case 0x95: // FRAME
		_, err := m.uint(8)
		return err
	case '(':
		if len(m.marks) >= m.lim.MaxMarks {
			return m.limit("more than %d nested MARKs (deep nesting)", m.lim.MaxMarks)
		}
		m.marks = append(m.marks, len(m.stack))
		return nil
	case '0': // POP
		if n := len(m.stack); len(m.marks) > 0 && m.marks[len(m.marks)-1] == n {
			m.marks = m.marks[:len(m.marks)-1] // POP of a MARK, as CPython does
			return nil
		}
		_, err := m.pop()
		return err
	case '1': // POP_MARK
		_, err := m.popMark()
		return err
	case '2': // DUP
		v, err := m.top()
		if err != nil {
			return err
		}
		return m.push(v)
	case 'N':
		return m.push(nil)
	case 0x88:
		return m.push(true)
	case 0x89:
		return m.push(false)
	case 'I': // INT (text; "00"/"01" are bools)
		s, err := m.line()
		if err != nil {
			return err
		}
		switch s {
		case "00":
			return m.push(false)
		case "01":
			return m.push(true)
		}
		return m.pushIntText(s)
	case 'L': // LONG (text)
		s, err := m.line()
		if err != nil {
			return err
		}
		return m.pushIntText(strings.TrimSuffix(s, "L"))
	case 'J': // BININT
		v, err := m.uint(4)
		if err != nil {
			return err
		}
		return m.push(int64(int32(uint32(v))))
	case 'K':
		v, err := m.uint(1)
		if err != nil {
			return err
		}
		return m.push(int64(v))
	case 'M':
		v, err := m.uint(2)
		if err != nil {
			return err
		}
		return m.push(int64(v))
	case 0x8a, 0x8b: // LONG1, LONG4
		w := 1
		if op == 0x8b {
			w = 4
		}
		n, err := m.uint(w)
		if err != nil {
			return err
		}
		if n > 1024 {
			return m.limit("a %d-byte integer", n)
		}
		b, err := m.read(int64(n))
		if err != nil {
			return err
		}
		return m.push(decodeLong(b))
	case 'F': // FLOAT (text)
		s, err := m.line()
		if err != nil {
			return err
		}
		f, perr := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if perr != nil {
			return m.fail("bad FLOAT %q", s)
		}
		return m.push(f)
	case 'G': // BINFLOAT, big-endian
		b, err := m.read(8)
		if err != nil {
			return err
		}
		return m.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'S': // STRING (text, quoted)
		s, err := m.line()
		if err != nil {
			return err
		}
		v, ok := unquote(s)
		if !ok {
			return m.fail("bad STRING %q", s)
		}
		return m.push(v)
	case 'V': // UNICODE (raw-unicode-escape)
		s, err := m.line()
		if err != nil {
			return err
		}
		return m.push(rawUnicodeEscape(s))
	case 'T', 'B', 'X', 'U', 'C', 0x8c, 0x8d, 0x8e, 0x96: // length-prefixed strings and bytes
		w := map[byte]int{'T': 4, 'B': 4, 'X': 4, 'U': 1, 'C': 1, 0x8c: 1, 0x8d: 8, 0x8e: 8, 0x96: 8}[op]
		n, err := m.uint(w)
		if err != nil {
			return err
		}
		if n > math.MaxInt64 {
			return m.limit("a value of %d bytes", n)
		}
		b, err := m.read(int64(n))
		if err != nil {
			return err
		}
		switch op {
		case 'X', 0x8c, 0x8d:
			return m.push(string(b))
		case 'T', 'U': // py2 str: kept as text
			return m.push(string(b))
		}
		return m.push(Bytes(b))
	case ')':
		return m.push(Tuple{})
	case ']':
		return m.push(&List{})
	case '}':
		return m.push(&Dict{})
	case 0x8f:
		return m.push(&Set{})
	case 't':
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(Tuple(items))
	case 0x85, 0x86, 0x87:
		n := int(op - 0x84)
		if len(m.stack) < n || (len(m.marks) > 0 && m.marks[len(m.marks)-1] > len(m.stack)-n) {
			return m.fail("stack underflow")
		}
		t := append(Tuple(nil), m.stack[len(m.stack)-n:]...)
		m.stack = m.stack[:len(m.stack)-n]
		return m.push(t)
	case 'l':
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(&List{Items: items})
	case 'd':
		items, err := m.popMark()
		if err != nil {
			return err
		}
		d := &Dict{}
		if err := m.setItems(d, items); err != nil {
			return err
		}
		return m.push(d)
	case 0x91: // FROZENSET
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(&Set{Items: items})
	case 'a': // APPEND
		v, err := m.pop()
		if err != nil {
			return err
		}
		return m.appendTo([]any{v})
	case 'e': // APPENDS
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.appendTo(items)
	case 's': // SETITEM
		v, err := m.pop()
		if err != nil {
			return err
		}
		k, err := m.pop()
		if err != nil {
			return err
		}
		return m.setOn([]any{k, v})
	case 'u': // SETITEMS
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.setOn(items)
	case 0x90: // ADDITEMS
		items, err := m.popMark()
		if err != nil {
			return err
		}
		t, err := m.top()
		if err != nil {
			return err
		}
		s, ok := t.(*Set)
		if !ok {
			return m.fail("ADDITEMS on a %s", typeName(t))
		}
		s.Items = append(s.Items, items...)
		return m.count(len(items))
	case 'p', 'q', 'r': // PUT, BINPUT, LONG_BINPUT
		k, err := m.memoKey(op)
		if err != nil {
			return err
		}
		return m.memoPut(k)
	case 0x94: // MEMOIZE
		return m.memoPut(int64(len(m.memo)))
	case 'g', 'h', 'j': // GET, BINGET, LONG_BINGET
		k, err := m.memoKey(op)
		if err != nil {
			return err
		}
		return m.memoGet(k)
	case 'c': // GLOBAL
		mod, err := m.line()
		if err != nil {
			return err
		}
		name, err := m.line()
		if err != nil {
			return err
		}
		return m.global(Global{mod, name})
	case 0x93: // STACK_GLOBAL
		name, err := m.pop()
		if err != nil {
			return err
		}
		mod, err := m.pop()
		if err != nil {
			return err
		}
		ms, ok1 := mod.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return m.fail("STACK_GLOBAL with non-string module or name")
		}
		return m.global(Global{ms, ns})
	case 'i': // INST: module and name as text, args after MARK
		mod, err := m.line()
		if err != nil {
			return err
		}
		name, err := m.line()
		if err != nil {
			return err
		}
		args, err := m.popMark()
		if err != nil {
			return err
		}
		g := Global{mod, name}
		if err := m.global(g); err != nil {
			return err
		}
		m.stack = m.stack[:len(m.stack)-1]
		return m.apply(g, args)
	case 'o': // OBJ: class and args after MARK
		items, err := m.popMark()
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return m.fail("OBJ without a class")
		}
		return m.apply(items[0], items[1:])
	case 'R', 0x81: // REDUCE f(*args), NEWOBJ cls.__new__(cls, *args)
		return m.call(op)
	case 0x92: // NEWOBJ_EX
		if _, err := m.pop(); err != nil { // kwargs
			return err
		}
		args, err := m.pop()
		if err != nil {
			return err
		}
		cls, err := m.pop()
		if err != nil {
			return err
		}
		t, _ := args.(Tuple)
		return m.apply(cls, t)
	case 'b': // BUILD
		state, err := m.pop()
		if err != nil {
			return err
		}
		obj, err := m.top()
		if err != nil {
			return err
		}
		switch o := obj.(type) {
		case *Object:
			o.State = state
		case *Tensor, *Dict, *Call, *List, *Set:
			// OrderedDict metadata, tensor attributes: not needed.
		default:
			return m.fail("BUILD on a %s", typeName(obj))
		}
		return nil
	case 'P': // PERSID (text)
		s, err := m.line()
		if err != nil {
			return err
		}
		return m.fail("text persistent id %q: not a torch storage", s)
	case 'Q': // BINPERSID
		pid, err := m.pop()
		if err != nil {
			return err
		}
		st, err := m.storage(pid)
		if err != nil {
			return err
		}
		return m.push(st)
	case 0x82, 0x83, 0x84:
		return m.fail("extension-registry opcode 0x%02x: the copyreg extension registry is code this reader does not run", op)
	case 0x97, 0x98:
		return m.fail("out-of-band buffer opcode 0x%02x: not used by torch.save", op)
	}
	return m.fail("unknown pickle opcode 0x%02x", op)
}

// call pops a callable and its argument tuple (REDUCE, NEWOBJ) and models the call.
func (m *machine) call(op byte) error {
	args, err := m.pop()
	if err != nil {
		return err
	}
	f, err := m.pop()
	if err != nil {
		return err
	}
	t, ok := args.(Tuple)
	if !ok {
		what := "REDUCE"
		if op == 0x81 {
			what = "NEWOBJ"
		}
		return m.fail("%s arguments are a %s, not a tuple", what, typeName(args))
	}
	return m.apply(f, t)
}

func (m *machine) pushIntText(s string) error {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return m.push(v)
	}
	if len(s) > 1024 {
		return m.limit("a %d-digit integer", len(s))
	}
	b, ok := new(big.Int).SetString(s, 0)
	if !ok {
		return m.fail("bad integer %q", s)
	}
	return m.push(b)
}

// decodeLong decodes a little-endian two's-complement integer.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		shift := uint(64 - 8*len(b))
		return int64(v<<shift) >> shift
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if v.IsInt64() {
		return v.Int64()
	}
	return v
}

func (m *machine) appendTo(items []any) error {
	t, err := m.top()
	if err != nil {
		return err
	}
	switch l := t.(type) {
	case *List:
		l.Items = append(l.Items, items...)
	case *Object:
		l.Items = append(l.Items, items...)
	case *Set:
		l.Items = append(l.Items, items...)
	case *Call:
	default:
		return m.fail("APPEND to a %s", typeName(t))
	}
	return m.count(len(items))
}

func (m *machine) setOn(items []any) error {
	t, err := m.top()
	if err != nil {
		return err
	}
	switch d := t.(type) {
	case *Dict:
		return m.setItems(d, items)
	case *Object:
		if d.DItems == nil {
			d.DItems = &Dict{}
		}
		return m.setItems(d.DItems, items)
	case *Call:
		return m.count(len(items))
	}
	return m.fail("SETITEM on a %s", typeName(t))
}

func (m *machine) setItems(d *Dict, items []any) error {
	if len(items)%2 != 0 {
		return m.fail("odd number of items for a dict")
	}
	for i := 0; i < len(items); i += 2 {
		d.set(items[i], items[i+1])
	}
	return m.count(len(items))
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case Bytes:
		return "bytes"
	case bool:
		return "bool"
	case Tuple:
		return "tuple"
	case *List:
		return "list"
	case *Dict:
		return "dict"
	case *Set:
		return "set"
	case Global:
		return "global"
	case *Tensor:
		return "tensor"
	case *Storage:
		return "storage"
	case *Object:
		return "object"
	case *Call:
		return "refused call"
	}
	return fmt.Sprintf("%T", v)
}

// unquote decodes a protocol-0 STRING argument: a Python repr in quotes.
func unquote(s string) (string, bool) {
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') || s[len(s)-1] != s[0] {
		return "", false
	}
	body := s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' || i+1 == len(body) {
			b.WriteByte(c)
			continue
		}
		i++
		switch body[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case 'x':
			if i+2 < len(body) {
				if v, err := strconv.ParseUint(body[i+1:i+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					continue
				}
			}
			b.WriteString(`\x`)
		default:
			b.WriteByte(body[i])
		}
	}
	return b.String(), true
}

// rawUnicodeEscape decodes a protocol-0 UNICODE argument: bytes are
// Latin-1 characters, \uXXXX and \UXXXXXXXX escapes the others.
func rawUnicodeEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			n := 4
			if s[i+1] == 'U' {
				n = 8
			}
			if i+2+n <= len(s) {
				if v, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32); err == nil {
					b.WriteRune(rune(v))
					i += 1 + n
					continue
				}
			}
		}
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}
