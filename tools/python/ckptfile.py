"""ckptfile -- read ckpt's native ``.ckpt`` checkpoints from Python (NumPy; torch optional).

The format is specified in docs/FORMAT.md of the ckpt repository; this module applies every
check listed there, as the C++ library does, and a few more.

    import ckptfile
    state = ckptfile.load("run.ckpt")          # the tree: ckptfile.Dict nodes, arrays, JSON values
    w = state["model"]["0.weight"]             # a read-only NumPy array mapped from the file
    with ckptfile.CkptFile("run.ckpt") as f:
        f.verify()                             # every tensor's CRC-32
        for key, leaf in f.items():            # key paths as tuples: ("model", "0.weight")
            ...

A dict node is a ``ckptfile.Dict`` (a ``dict`` in file order whose ``container`` is "dict",
"int_dict" or "list"); keys are the file's strings, dots and all. Tensors are NumPy arrays:
raw tensors memory-mapped without a copy (every tensor is 64-byte aligned in the file), zlib
tensors decoded into memory. bfloat16 and float8, which NumPy lacks, come as their raw bits in
a one-field structured dtype named like the torch dtype, as ckpt writes them to ``.npy``:
``a["bfloat16"]`` is a uint16 array. With ``torch=True`` every tensor is a ``torch.Tensor`` of
its real dtype instead. Every problem with a file's bytes raises ``CkptError`` (subclasses
``FormatError``, ``CorruptError``, ``UnsupportedError``) naming the file, and the key path and
byte offset where they apply; failing to open the file raises the usual ``OSError``.
"""

import json
import mmap as _mmap
import os
import struct
import zlib
from collections import namedtuple

import numpy as np

__version__ = "0.1.0"
__all__ = ["load", "verify", "CkptFile", "Dict", "Entry", "CkptError", "FormatError", "CorruptError",
           "UnsupportedError", "DTYPES", "key_str"]

FORMAT_VERSION = 1
MAGIC = b"\x89CKPT\r\n\x1a"
END_MAGIC = b"CKPT-END"
HEADER_SIZE, TRAILER_SIZE, ALIGNMENT = 64, 32, 64
MAX_FOOTER_BYTES = 1 << 30               # the library's cap on a footer
MAX_TREE_DEPTH = 256                     # levels of tree
MAX_JSON_DEPTH = 2 * MAX_TREE_DEPTH + 16  # levels of JSON
MAX_DEFLATE_RATIO = 1032                 # deflate expands at most 1032:1 (as the library's zip reader)
CONTAINERS = ("dict", "int_dict", "list")
CODECS = ("raw", "zlib")

# Our dtype name -> (bytes per element, NumPy dtype, torch dtype attribute).
DTYPES = {
    "f64": (8, np.dtype("<f8"), "float64"),
    "f32": (4, np.dtype("<f4"), "float32"),
    "f16": (2, np.dtype("<f2"), "float16"),
    "bf16": (2, np.dtype([("bfloat16", "<u2")]), "bfloat16"),
    "f8_e4m3": (1, np.dtype([("float8_e4m3fn", "u1")]), "float8_e4m3fn"),
    "f8_e5m2": (1, np.dtype([("float8_e5m2", "u1")]), "float8_e5m2"),
    "i8": (1, np.dtype("i1"), "int8"),
    "i16": (2, np.dtype("<i2"), "int16"),
    "i32": (4, np.dtype("<i4"), "int32"),
    "i64": (8, np.dtype("<i8"), "int64"),
    "u8": (1, np.dtype("u1"), "uint8"),
    "u16": (2, np.dtype("<u2"), "uint16"),
    "u32": (4, np.dtype("<u4"), "uint32"),
    "u64": (8, np.dtype("<u8"), "uint64"),
    "bool": (1, np.dtype("?"), "bool"),
    "c64": (8, np.dtype("<c8"), "complex64"),
    "c128": (16, np.dtype("<c16"), "complex128"),
}
# The library also reads torch's spelling of a dtype ("float32") in a footer.
_DTYPE_NAMES = dict({t: n for n, (_, _, t) in DTYPES.items()}, **{n: n for n in DTYPES})
_INT64_MAX, _UINT64_MAX = (1 << 63) - 1, (1 << 64) - 1

_TENSOR, _VALUE, _DICT = "tensor", "value", "dict"


def key_str(key):
    """A key path in ckpt's escaped dotted form: ("model", "0.weight") -> 'model.0\\.weight'."""
    return ".".join(k.replace("\\", "\\\\").replace(".", "\\.") for k in key)


class CkptError(Exception):
    """A .ckpt file cannot be read. Attributes: reason, path, key (tuple or None), offset (int or
    None), expected, got. The message has ckpt's shape:
    ``ckptfile: <reason> (at byte N) in '<path>' at '<key>': expected X, got Y``."""

    def __init__(self, reason, path, key=None, offset=None, expected=None, got=None):
        self.reason, self.path, self.key, self.offset = reason, path, key, offset
        self.expected, self.got = expected, got
        m = "ckptfile: " + reason
        if offset is not None:
            m += " (at byte %d)" % offset
        m += " in '%s'" % path
        if key:
            m += " at '%s'" % key_str(key)
        if expected is not None or got is not None:
            m += ": expected %s, got %s" % (expected, got)
        super().__init__(m)


class FormatError(CkptError):
    """The bytes are not a valid .ckpt file (the structure is broken)."""


class CorruptError(CkptError):
    """A CRC-32 does not match: the stored bytes changed after they were written."""


class UnsupportedError(CkptError):
    """A valid request this reader cannot do: an unknown format version, a dtype the installed
    torch lacks, torch=True without torch."""


class Dict(dict):
    """A dict node of a checkpoint tree, in file order; ``container`` says what it stood for:
    "dict", "int_dict" (decimal integer keys: a PyTorch optimizer's state) or "list" ("0", "1", ...)."""

    __slots__ = ("container",)

    def __init__(self, container="dict"):
        super().__init__()
        self.container = container

    def __repr__(self):
        return "Dict(%r, %s)" % (self.container, dict.__repr__(self))


Entry = namedtuple("Entry", "key dtype shape offset nbytes stored_nbytes codec crc32")
Entry.__doc__ = """One tensor of the footer's table: key path (tuple of str), our dtype name,
shape (tuple), offset and stored_nbytes of the stored bytes, nbytes decoded, codec, crc32."""


def _excerpt(v):
    s = json.dumps(v) if v is not _MISSING else "nothing"
    return s if len(s) <= 80 else s[:77] + "..."


_MISSING = object()


class _Refused(Exception):
    pass


def _object_pairs(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise _Refused("duplicate key '%s' in a JSON object" % k)
        d[k] = v
    return d


def _constant(name):
    raise _Refused("%s is not JSON" % name)


def _too_deep(doc, limit):
    stack = [(doc, 1)] if isinstance(doc, (dict, list)) else []
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            return True
        for c in (v.values() if isinstance(v, dict) else v):
            if isinstance(c, (dict, list)):
                stack.append((c, depth + 1))
    return False


# The members the library knows (archive/native.hpp footer_shape, detail/skeleton.hpp).
_FOOTER_MEMBERS = frozenset(("format", "version", "library", "alignment", "tensors", "tree"))
_ENTRY_MEMBERS = frozenset(("key", "dtype", "shape", "offset", "nbytes", "stored_nbytes", "codec", "crc32"))
_NODE_MEMBERS = frozenset(("dict", "container", "tensor", "value"))


def _is_int(v):
    return type(v) is int  # never a bool, never 3.0


class CkptFile:
    """An open .ckpt file: header, trailer, footer, tensor table and tree validated on opening;
    tensors read on demand. ``mmap=True`` (default) maps the file, so raw tensors are views of
    it; ``mmap=False`` reads each tensor into memory. ``strict=True`` (default), as the library's
    ``LoadOptions::strict``, refuses a footer, entry or tree node with a member this reader does not
    know; ``strict=False`` skips such members."""

    def __init__(self, path, *, mmap=True, strict=True):
        self.path = os.fspath(path)
        self._strict = strict
        self._name = os.fsdecode(self.path)
        self._file = open(self.path, "rb")
        self._mm = None
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            self._open()
            if mmap:
                # Copy-on-write: arrays handed to torch may be written; the file never is.
                self._mm = _mmap.mmap(self._file.fileno(), 0, access=_mmap.ACCESS_COPY)
                self._file.close()
                self._file = None
        except BaseException:
            self.close()
            raise

    # ---- validation, in the order of docs/FORMAT.md "Validation a reader must do" ----
    def _err(self, cls, reason, key=None, offset=None, expected=None, got=None):
        return cls(reason, self._name, key, offset, expected, got)

    def _read(self, offset, n):
        buf = bytearray(n)
        view, done = memoryview(buf), 0
        while done < n:
            if hasattr(os, "preadv"):  # positional: no shared file position between threads
                got = os.preadv(self._file.fileno(), [view[done:]], offset + done)
            else:
                self._file.seek(offset + done)
                got = self._file.readinto(view[done:])
            if not got:
                raise self._err(FormatError, "file ended early (did it shrink while being read?)",
                                offset=offset + done, expected="%d bytes" % n, got="%d bytes" % done)
            done += got
        return buf

    def _open(self):
        size = self._size
        if size < HEADER_SIZE + TRAILER_SIZE:
            raise self._err(FormatError, "file too small for a .ckpt (%d bytes)" % size, offset=0)
        head = self._read(0, HEADER_SIZE)
        if head[:8] != MAGIC:
            raise self._err(FormatError, "not a .ckpt file (bad magic)", offset=0)
        version = struct.unpack_from("<I", head, 8)[0]
        if version != FORMAT_VERSION:
            raise self._err(UnsupportedError, "unsupported .ckpt format version %d (this reader reads %d)"
                            % (version, FORMAT_VERSION), offset=8)
        tr = self._read(size - TRAILER_SIZE, TRAILER_SIZE)
        if tr[24:] != END_MAGIC:
            raise self._err(FormatError, "bad trailer magic (file truncated or not a .ckpt)", offset=size - 8)
        foff, flen, fcrc, tversion = struct.unpack_from("<QQII", tr)
        if tversion != version:
            raise self._err(FormatError, "trailer version differs from the header's", offset=size - 12,
                            expected=str(version), got=str(tversion))
        if flen > MAX_FOOTER_BYTES or foff < HEADER_SIZE or foff + flen != size - TRAILER_SIZE:
            raise self._err(FormatError, "footer location out of range", offset=size - TRAILER_SIZE,
                            expected="footer ending at %d" % (size - TRAILER_SIZE),
                            got="offset %d + length %d" % (foff, flen))
        self._foff = foff
        text = self._read(foff, flen)
        crc = zlib.crc32(text)
        if crc != fcrc:
            raise self._err(CorruptError, "footer checksum mismatch", expected="0x%08x" % fcrc, got="0x%08x" % crc)
        self.footer = self._parse_json(text)
        if not isinstance(self.footer, dict) or self.footer.get("format") != "ckpt":
            raise self._footer_error("not a ckpt footer")
        self._known(self.footer, _FOOTER_MEMBERS, "the footer")
        table = self.footer.get("tensors")
        if not isinstance(table, list):
            raise self._footer_error("missing tensor table")
        self.entries = [self._parse_entry(j) for j in table]
        self._check_overlaps()
        self.skeleton = self.footer.get("tree")
        self._plan = self._flat_plan() if self.skeleton is None else self._node(self.skeleton, (), 0)

    def _parse_json(self, text):
        try:
            doc = json.loads(text.decode("utf-8"), object_pairs_hook=_object_pairs, parse_constant=_constant)
        except RecursionError:
            problem = "JSON nested deeper than %d levels" % MAX_JSON_DEPTH
        except UnicodeDecodeError as e:
            problem = "invalid UTF-8 at footer byte %d" % e.start
        except (ValueError, _Refused) as e:  # json.JSONDecodeError is a ValueError
            problem = "invalid JSON: %s" % e
        else:
            if not _too_deep(doc, MAX_JSON_DEPTH):
                return doc
            problem = "JSON nested deeper than %d levels" % MAX_JSON_DEPTH
        raise self._err(FormatError, "cannot parse the footer: " + problem, offset=self._foff)

    def _known(self, obj, members, where, key=None, error=None):
        """Under strict, a member of `obj` not in `members` is a FormatError."""
        if self._strict:
            for m in obj:
                if m not in members:
                    raise (error or self._footer_error)("unknown member '%s' in %s (strict=False skips it)" % (m, where), key)

    def _footer_error(self, what, key=None, expected=None, got=None):
        return self._err(FormatError, "invalid footer: " + what, key, self._foff, expected, got)

    def _parse_entry(self, j):
        if not isinstance(j, dict):
            raise self._footer_error("entry is not an object")
        key = j.get("key")
        if not isinstance(key, list) or not all(isinstance(k, str) for k in key):
            raise self._footer_error("malformed entry: 'key' is not a list of strings", None, "a list of strings",
                                     _excerpt(j.get("key", _MISSING)))
        key = tuple(key)
        self._known(j, _ENTRY_MEMBERS, "a tensor entry", key)

        def field(name, check, what):
            v = j.get(name, _MISSING)
            if not check(v):
                raise self._footer_error("'%s' is not %s" % (name, what), key, what, _excerpt(v))
            return v

        dtype = field("dtype", lambda v: isinstance(v, str), "a string")
        if dtype not in _DTYPE_NAMES:
            raise self._footer_error("unknown dtype '%s'" % dtype, key)
        dtype = _DTYPE_NAMES[dtype]
        shape = field("shape", lambda v: isinstance(v, list) and all(_is_int(d) and -_INT64_MAX - 1 <= d <= _INT64_MAX
                                                                      for d in v), "a list of integers")
        in_u64 = lambda v: _is_int(v) and 0 <= v <= _UINT64_MAX  # noqa: E731
        nbytes = field("nbytes", in_u64, "an integer in range")
        stored = field("stored_nbytes", in_u64, "an integer in range")
        codec = field("codec", lambda v: isinstance(v, str), "a string")
        offset = field("offset", in_u64, "an integer in range")
        crc = field("crc32", lambda v: _is_int(v) and 0 <= v < 1 << 32, "an integer in range")
        size, numel = DTYPES[dtype][0], 1
        for d in shape:  # the library's checked_nbytes: no dimension below 0, no overflow
            if d < 0 or (d and numel > _INT64_MAX // d):
                numel = None
                break
            numel *= d
        valid = numel is not None and numel <= _UINT64_MAX // 2 // size
        if not valid or numel * size != nbytes:
            raise self._footer_error("tensor size does not match its shape", key,
                                     "%d bytes" % (numel * size) if valid else "a valid shape", "%d bytes" % nbytes)
        if codec not in CODECS:
            raise self._footer_error("unknown codec '%s'" % codec, key)
        if codec == "zlib" and nbytes // MAX_DEFLATE_RATIO > stored + 64:  # a hostile size, before any allocation
            raise self._footer_error("declared size impossible for zlib (ratio above 1032:1)", key,
                                     "at most %d bytes" % ((stored + 64) * MAX_DEFLATE_RATIO), "%d bytes" % nbytes)
        if codec == "raw" and stored != nbytes:
            raise self._footer_error("raw entry with stored size different from its size", key,
                                     "%d bytes" % nbytes, "%d bytes" % stored)
        if offset % ALIGNMENT or offset < HEADER_SIZE or offset > self._foff or stored > self._foff - offset:
            raise self._footer_error("tensor data out of range", key, "64-aligned range inside [64, %d)" % self._foff,
                                     "offset %d size %d" % (offset, stored))
        return Entry(key, dtype, tuple(shape), offset, nbytes, stored, codec, crc)

    def _check_overlaps(self):
        used = sorted((e for e in self.entries if e.stored_nbytes), key=lambda e: e.offset)
        for a, b in zip(used, used[1:]):
            if a.offset + a.stored_nbytes > b.offset:
                raise self._footer_error("tensor data overlaps '%s'" % key_str(a.key), b.key)

    # ---- the tree: validated into a plan on opening, materialized on request ----
    def _tree_error(self, what, key):
        return self._err(FormatError, "invalid tree: " + what, key, self._foff)

    def _node(self, node, path, depth):
        if depth > MAX_TREE_DEPTH:
            raise self._tree_error("nesting deeper than %d" % MAX_TREE_DEPTH, path)
        if not isinstance(node, dict) or not node:
            raise self._tree_error("a node must be an object", path)
        self._known(node, _NODE_MEMBERS, "a tree node", path, self._tree_error)
        if "tensor" in node:
            i = node["tensor"]
            if not _is_int(i) or not 0 <= i < len(self.entries):
                raise self._tree_error("tensor index out of range", path)
            return (_TENSOR, i)
        if "value" in node:
            return (_VALUE, node["value"])
        items = node.get("dict")
        if not isinstance(items, list):
            raise self._tree_error('a node needs "dict", "tensor" or "value"', path)
        container = node.get("container", "dict")
        if container not in CONTAINERS:
            raise self._tree_error("unknown container %s" % _excerpt(container), path)
        children = {}
        for item in items:
            if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str):
                raise self._tree_error("a dict item must be [key, node]", path)
            if item[0] in children:
                raise self._tree_error("duplicate key '%s'" % item[0], path)
            children[item[0]] = self._node(item[1], path + (item[0],), depth + 1)
        return (_DICT, container, children)

    def _flat_plan(self):
        """No tree in the footer (a flat file): each tensor is a leaf at its key path."""
        root = (_DICT, "dict", {})
        for i, e in enumerate(self.entries):
            if not e.key:
                if i == 0 and len(self.entries) == 1:
                    return (_TENSOR, 0)
                raise self._err(FormatError, "duplicate entry", e.key)
            node = root
            for k in e.key[:-1]:
                if node[0] == _TENSOR:
                    break
                node = node[2].setdefault(k, (_DICT, "dict", {}))
            if node[0] == _TENSOR:
                raise self._err(FormatError, "entry nested under another entry", e.key)
            if e.key[-1] in node[2]:
                raise self._err(FormatError, "duplicate entry", e.key)
            node[2][e.key[-1]] = (_TENSOR, i)
        return root

    def tree(self, *, verify=None, torch=False):
        """The whole checkpoint: Dict nodes, tensors (see read) and JSON values."""
        def build(node):
            if node[0] == _DICT:
                d = Dict(node[1])
                for k, child in node[2].items():
                    d[k] = build(child)
                return d
            return self.read(node[1], verify=verify, torch=torch) if node[0] == _TENSOR else node[1]
        return build(self._plan)

    def items(self, *, verify=None, torch=False):
        """(key path tuple, leaf) for every tensor and value leaf, in file order."""
        stack = [((), self._plan)]
        while stack:
            path, node = stack.pop()
            if node[0] == _DICT:
                stack.extend(reversed([(path + (k,), c) for k, c in node[2].items()]))
            else:
                yield path, (self.read(node[1], verify=verify, torch=torch) if node[0] == _TENSOR else node[1])

    # ---- tensors ----
    def _stored(self, e, at=0, n=None):
        start, n = e.offset + at, e.stored_nbytes if n is None else n
        if self._mm is not None:
            return memoryview(self._mm)[start:start + n]
        if self._file is None:
            raise ValueError("ckptfile: I/O on a closed CkptFile ('%s')" % self._name)
        return self._read(start, n)

    def _check_crc(self, e, stored=None):
        if stored is not None:
            crc = zlib.crc32(stored)
        else:  # piece by piece: verify() holds at most one piece of a copied tensor
            crc, step = 0, 1 << 26
            for at in range(0, e.stored_nbytes, step):
                crc = zlib.crc32(self._stored(e, at, min(step, e.stored_nbytes - at)), crc)
        if crc != e.crc32:
            raise self._err(CorruptError, "checksum mismatch", e.key, e.offset, "0x%08x" % e.crc32, "0x%08x" % crc)

    def _inflate(self, e, stored, size):
        d = zlib.decompressobj()
        try:
            out = d.decompress(stored, e.nbytes + 1)
        except zlib.error as x:
            raise self._err(FormatError, "cannot inflate tensor data", e.key, e.offset, "%d bytes" % e.nbytes, str(x))
        if len(out) != e.nbytes or not d.eof or d.unused_data or d.unconsumed_tail:
            got = "%d bytes" % len(out) if d.eof else "an incomplete zlib stream"
            if d.unused_data or d.unconsumed_tail:
                got += " and bytes after the zlib stream"
            raise self._err(FormatError, "cannot inflate tensor data", e.key, e.offset,
                            "%d bytes in one zlib stream" % e.nbytes, got)
        data = np.frombuffer(out, np.uint8)
        # Unshuffle: the stream holds every element's first byte, then every second byte, ...
        return np.ascontiguousarray(data.reshape(size, -1).T).reshape(-1) if size > 1 else data.copy()

    def read(self, index, *, verify=None, torch=False):
        """Tensor ``index`` of ``entries`` as a NumPy array (see the module's doc for bf16/f8), or
        with ``torch=True`` a torch.Tensor of its real dtype. ``verify`` checks the CRC-32 of a raw
        tensor; by default only when it is copied (mmap=False) -- zlib tensors are always checked
        before they are inflated, as the library does."""
        e = self.entries[index]
        size, dtype, _ = DTYPES[e.dtype]
        stored = self._stored(e)
        if e.codec == "zlib" or (verify if verify is not None else self._mm is None):
            self._check_crc(e, stored)
        if e.codec == "zlib":
            arr = self._inflate(e, stored, size).view(dtype).reshape(e.shape)
        elif e.nbytes == 0:
            arr = np.empty(e.shape, dtype)
        else:
            arr = np.frombuffer(stored, dtype, e.nbytes // size).reshape(e.shape)
            if self._mm is not None and not torch:
                arr.flags.writeable = False  # a view of the file: read-only for NumPy users
        return self._to_torch(e, arr) if torch else arr

    def _to_torch(self, e, arr):
        try:
            import torch
        except ImportError as x:
            raise self._err(UnsupportedError, "torch=True needs PyTorch (%s)" % x, e.key)
        tdtype = getattr(torch, DTYPES[e.dtype][2], None)
        if not isinstance(tdtype, torch.dtype):
            raise self._err(UnsupportedError, "this torch (%s) has no %s tensors" % (torch.__version__, DTYPES[e.dtype][2]),
                            e.key)
        bits = arr[arr.dtype.names[0]] if arr.dtype.names else arr
        try:
            t = torch.from_numpy(bits)
        except TypeError:  # torch before 2.3 takes no uint16/32/64 arrays
            t = torch.from_numpy(bits.view("<i%d" % bits.dtype.itemsize))
        return t if t.dtype == tdtype else t.view(tdtype)

    def verify(self):
        """Check every tensor's stored bytes against its CRC-32 (the structure was checked on
        opening); CorruptError names the first bad tensor."""
        for e in self.entries:
            self._check_crc(e)

    def close(self):
        """Close the file. Arrays already read stay valid (they keep the mapping alive)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._mm = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<ckptfile.CkptFile '%s': %d tensors>" % (self._name, len(getattr(self, "entries", ())))


def load(path, *, verify=None, torch=False, mmap=True, strict=True):
    """Read a .ckpt file's whole tree (see CkptFile.tree and CkptFile.read)."""
    with CkptFile(path, mmap=mmap, strict=strict) as f:
        return f.tree(verify=verify, torch=torch)


def verify(path):
    """Check a .ckpt file's structure and every CRC-32; raises CkptError on the first problem."""
    with CkptFile(path, mmap=False) as f:
        f.verify()
