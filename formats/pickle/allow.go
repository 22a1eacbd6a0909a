package pickle

import (
	"strings"
	"unicode"
)

// Verdict is what a global named by a pickle means for the safety of loading it.
type Verdict int

const (
	// Allowed: on the allow-list; modelled in Go, nothing is imported.
	Allowed Verdict = iota
	// Data: a class outside the allow-list that holds data (a config object,
	// an nn.Module subclass, a numpy scalar). Loading the file needs its
	// library and torch.load(weights_only=False); ckpt keeps it as a record.
	Data
	// Code: a function or anything in a module that runs code or touches the
	// system, or any unknown callable: torch.load would call it.
	Code
)

func (v Verdict) String() string {
	switch v {
	case Allowed:
		return "allowed"
	case Data:
		return "data"
	}
	return "code"
}

// What the allow-listed globals are, for the machine's REDUCE/NEWOBJ.
type builtin int

const (
	bNone builtin = iota // a reference only (dtypes, storage classes, object, layouts)
	bOrderedDict
	bDefaultDict
	bRebuildTensor   // torch._utils._rebuild_tensor
	bRebuildTensorV2 // torch._utils._rebuild_tensor_v2
	bRebuildTensorV3 // torch._utils._rebuild_tensor_v3 (dtype passed explicitly)
	bRebuildParameter
	bRebuildParameterState
	bRebuildFromType // torch._tensor._rebuild_from_type_v2
	bParameter       // torch.nn.parameter.Parameter
	bSet
	bFrozenSet
	bSlice
	bComplex
	bByteArray
	bCodecsEncode
	bSize
	bDevice
	bGetLayout
	bReconstructor // copyreg._reconstructor
	bNumpyReconstruct
	bNumpyDType
	bStorage // a torch.*Storage class
	bDType   // a torch dtype object
	bTensorClass
)

// storageDTypes maps the torch storage classes to the dtype of their elements.
var storageDTypes = map[string]string{
	"DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
	"BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
	"ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
	"BoolStorage": "bool", "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
	"QInt8Storage": "qint8", "QUInt8Storage": "quint8", "QInt32Storage": "qint32",
	"QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4",
	"UntypedStorage": "uint8", "_UntypedStorage": "uint8",
}

// torchDTypes are the dtype objects torch pickles as globals (torch.float32)
// with their canonical names.
var torchDTypes = map[string]string{
	"float32": "float32", "float": "float32", "float64": "float64", "double": "float64",
	"float16": "float16", "half": "float16", "bfloat16": "bfloat16",
	"int64": "int64", "long": "int64", "int32": "int32", "int": "int32",
	"int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8",
	"uint16": "uint16", "uint32": "uint32", "uint64": "uint64", "bool": "bool",
	"complex64": "complex64", "cfloat": "complex64", "complex128": "complex128", "cdouble": "complex128",
	"complex32": "complex32", "chalf": "complex32",
	"float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2",
	"float8_e4m3fnuz": "float8_e4m3fnuz", "float8_e5m2fnuz": "float8_e5m2fnuz", "float8_e8m0fnu": "float8_e8m0fnu",
	"qint8": "qint8", "quint8": "quint8", "qint32": "qint32", "bits8": "bits8",
}

var allowList = map[string]builtin{
	"collections.OrderedDict":                    bOrderedDict,
	"collections.defaultdict":                    bDefaultDict,
	"torch._utils._rebuild_tensor":               bRebuildTensor,
	"torch._utils._rebuild_tensor_v2":            bRebuildTensorV2,
	"torch._utils._rebuild_tensor_v3":            bRebuildTensorV3,
	"torch._utils._rebuild_parameter":            bRebuildParameter,
	"torch._utils._rebuild_parameter_with_state": bRebuildParameterState,
	"torch._tensor._rebuild_from_type_v2":        bRebuildFromType,
	"torch.nn.parameter.Parameter":               bParameter,
	"torch.Tensor":                               bTensorClass,
	"torch._tensor.Tensor":                       bTensorClass,
	"builtins.set":                               bSet,
	"__builtin__.set":                            bSet,
	"builtins.frozenset":                         bFrozenSet,
	"__builtin__.frozenset":                      bFrozenSet,
	"builtins.slice":                             bSlice,
	"builtins.complex":                           bComplex,
	"__builtin__.complex":                        bComplex,
	"builtins.bytearray":                         bByteArray,
	"__builtin__.bytearray":                      bByteArray,
	"builtins.bytes":                             bByteArray,
	"__builtin__.bytes":                          bByteArray,
	"builtins.object":                            bNone,
	"__builtin__.object":                         bNone,
	"_codecs.encode":                             bCodecsEncode,
	"torch.Size":                                 bSize,
	"torch.device":                               bDevice,
	"torch.serialization._get_layout":            bGetLayout,
	"torch.strided":                              bNone,
	"copyreg._reconstructor":                     bReconstructor,
	"copy_reg._reconstructor":                    bReconstructor,
	"numpy.core.multiarray._reconstruct":         bNumpyReconstruct,
	"numpy._core.multiarray._reconstruct":        bNumpyReconstruct,
	"numpy.ndarray":                              bNone,
	"numpy.dtype":                                bNumpyDType,
	"torch.storage.UntypedStorage":               bStorage,
	"torch.storage._LegacyStorage":               bStorage,
}

// codeModules are modules (and their submodules) whose globals run code or
// touch the system: naming anything in them is an error, class or not.
var codeModules = []string{
	"os", "posix", "nt", "subprocess", "sys", "builtins", "__builtin__", "runpy", "webbrowser",
	"socket", "shutil", "pty", "asyncio", "importlib", "pickle", "_pickle", "cPickle", "marshal",
	"code", "codeop", "ctypes", "_ctypes", "multiprocessing", "signal", "threading", "_thread",
	"pdb", "bdb", "timeit", "platform", "tempfile", "http", "urllib", "urllib2", "requests",
	"ftplib", "telnetlib", "smtplib", "poplib", "imaplib", "functools", "operator", "_operator",
	"types", "inspect", "io", "_io", "pathlib", "glob", "posixpath", "ntpath", "commands", "popen2",
	"pydoc", "site", "gc", "sysconfig", "zipimport", "pkgutil", "venv", "ensurepip", "distutils",
	"setuptools", "pip", "pkg_resources", "dill", "cloudpickle", "joblib", "ssl", "select",
	"selectors", "concurrent", "sched", "atexit", "trace", "tracemalloc", "linecache", "fileinput",
	"zipfile", "tarfile", "bz2", "lzma", "gzip", "zlib", "sqlite3", "dbm", "shelve", "xmlrpc",
	"socketserver", "smtpd", "logging", "getpass", "uuid", "random", "secrets",
	"torch.utils.collect_env", "torch.hub", "torch.serialization", "torch.jit", "torch._dynamo",
	"torch.ops", "torch.package", "torch.utils.cpp_extension", "torch.cuda", "torch.distributed",
	"torch.multiprocessing", "torch._inductor", "torch.fx", "torch.testing", "torch.backends",
	"numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.lib.npyio", "numpy.load",
}

// Classify gives a global's verdict: the allow-list first, then the modules
// that run code, then the shape of the name: a CapWords class name is data, a
// function name (lower case, dotted attribute paths, dunders) is code.
func Classify(g Global) Verdict {
	if _, ok := lookup(g); ok {
		return Allowed
	}
	if (g.Module == "numpy.core.multiarray" || g.Module == "numpy._core.multiarray") && g.Name == "scalar" {
		return Data // a numpy scalar: data, but loading it needs numpy
	}
	if inCodeModule(g.Module) || g.Module == "" || g.Name == "" {
		return Code
	}
	if strings.ContainsAny(g.Name, ".") || strings.HasPrefix(g.Name, "__") || strings.ContainsAny(g.Module, " \n") {
		return Code
	}
	r := []rune(g.Name)
	if g.Name[0] == '_' && len(r) > 1 {
		r = r[1:]
	}
	if unicode.IsUpper(r[0]) {
		return Data
	}
	return Code
}

func inCodeModule(m string) bool {
	for _, c := range codeModules {
		if m == c || strings.HasPrefix(m, c+".") {
			return true
		}
	}
	return false
}

// lookup returns what an allow-listed global is, and whether it is one.
func lookup(g Global) (builtin, bool) {
	if b, ok := allowList[g.String()]; ok {
		return b, true
	}
	if g.Module == "torch" {
		if _, ok := storageDTypes[g.Name]; ok {
			return bStorage, true
		}
		if _, ok := torchDTypes[g.Name]; ok {
			return bDType, true
		}
	}
	return bNone, false
}
