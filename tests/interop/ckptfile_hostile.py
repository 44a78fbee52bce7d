"""tools/python/ckptfile.py on hostile files: only its own exception (CkptError, naming the file),
or exactly the library's values.

1. The C++ corruption sweep (tests/reliability/test_corruption.cpp) on small files the library
   wrote, raw and zlib: every byte flipped, every truncation, loaded mapped and copied with
   verify on. Any other exception (IndexError, struct.error, ValueError, ...) fails; a flip
   must raise or load what the library loads from the intact file; a cut must raise a
   FormatError with a byte offset.
2. One crafted file per check of docs/FORMAT.md (footer rewritten, its CRC recomputed so the
   check itself is reached): the module raises the named error class with the rule in the
   message; where the library applies the same rule, the library (ckptfile_fixtures describe)
   refuses the file too. Files both accept are read identically.
Usage: see ckptfile_common.py."""
import json
import os
import struct
import traceback
import zlib

from ckptfile_common import OUTDIR, check_tree, ckptfile, describe, write_fixtures

write_fixtures()
tmp = os.path.join(OUTDIR, "x.ckpt")


def write(data):
    with open(tmp, "wb") as f:
        f.write(data)


def load_all(mmap):
    return ckptfile.load(tmp, verify=True, mmap=mmap)


def check_error(e):
    assert e.path == tmp and ("in '%s'" % tmp) in str(e), str(e)


# ---- 1. every byte flipped, every truncation ----
for name in ("run.ckpt", "run_zlib.ckpt"):
    src = os.path.join(OUTDIR, name)
    want = describe(src)
    data = open(src, "rb").read()
    tally = {"flip errors": 0, "flip identical": 0, "cut errors": 0}
    for kind, n in [("flip", i) for i in range(len(data))] + [("cut", n) for n in range(len(data))]:
        write(data[:n] + bytes([data[n] ^ 0xFF]) + data[n + 1:] if kind == "flip" else data[:n])
        for mmap in (True, False):
            try:
                got = load_all(mmap)
            except ckptfile.CkptError as e:
                check_error(e)
                if kind == "cut":
                    assert isinstance(e, ckptfile.FormatError) and e.offset is not None and e.offset <= len(data), \
                        (name, n, str(e))
                tally[kind + " errors"] += 1
                continue
            except Exception:
                raise AssertionError("%s: %s at byte %d (mmap=%s) raised a foreign exception:\n%s"
                                     % (name, kind, n, mmap, traceback.format_exc()))
            assert kind == "flip", "%s: a file cut to %d bytes loaded" % (name, n)
            try:
                check_tree(got, want)
            except AssertionError:
                raise AssertionError("%s: byte %d flipped (mmap=%s) loaded other values:\n%s"
                                     % (name, n, mmap, traceback.format_exc()))
            tally["flip identical"] += 1
    assert tally["flip errors"] > 0 and tally["cut errors"] == 2 * len(data), tally
    print("%s: %d bytes, each flipped and cut, mapped and copied: %s" % (name, len(data), tally))


# ---- 2. one crafted file per rule ----
base = open(os.path.join(OUTDIR, "run.ckpt"), "rb").read()
zbase = open(os.path.join(OUTDIR, "run_zlib.ckpt"), "rb").read()


def parts(data):
    foff, flen = struct.unpack_from("<QQ", data, len(data) - 32)
    return data[:foff], data[foff:foff + flen], data[foff + flen:]


def with_footer(text, data=base):
    """`data` with its footer replaced by `text` (bytes), trailer and footer CRC updated."""
    head, _, tr = parts(data)
    trailer = struct.pack("<QQI", len(head), len(text), zlib.crc32(text)) + tr[20:]
    return head + text + trailer


def edit(fn, data=base):
    """`data` with fn(footer dict) applied to its footer."""
    footer = json.loads(parts(data)[1])
    fn(footer)
    return with_footer(json.dumps(footer).encode(), data)


def entry(footer, key):
    return next(e for e in footer["tensors"] if e["key"] == key)


def setter(key, field, value):
    return lambda f: entry(f, key).__setitem__(field, value)


W, B, S = ["model", "0.weight"], ["model", "0.bias"], ["steps"]
size = len(base)
deep = lambda n: "[" * n + "]" * n  # noqa: E731
cases = [
    # (name, file bytes, error class, text in the message, the library refuses it too: True, False,
    # or None for not asked)
    ("too small", base[:64] + base[-31:], ckptfile.FormatError, "too small", True),
    ("bad magic", b"\x88" + base[1:], ckptfile.FormatError, "bad magic", True),
    ("version 2", base[:8] + struct.pack("<I", 2) + base[12:], ckptfile.UnsupportedError, "version 2", True),
    ("bad end magic", base[:-1] + b"X", ckptfile.FormatError, "trailer magic", True),
    ("trailer version 2", base[:-12] + struct.pack("<I", 2) + base[-8:], ckptfile.FormatError, "trailer version", False),
    ("footer before the data", base[:-32] + struct.pack("<Q", 32) + base[-24:], ckptfile.FormatError,
     "footer location", True),
    ("footer length too long", base[:-24] + struct.pack("<Q", size) + base[-16:], ckptfile.FormatError,
     "footer location", True),
    ("footer length 2^64-1", base[:-24] + struct.pack("<Q", 2 ** 64 - 1) + base[-16:], ckptfile.FormatError,
     "footer location", True),
    ("footer checksum", base[:-16] + struct.pack("<I", zlib.crc32(parts(base)[1]) ^ 1) + base[-12:],
     ckptfile.CorruptError, "footer checksum mismatch", True),
    ("not JSON", with_footer(b'{"format": "ckpt", '), ckptfile.FormatError, "invalid JSON", True),
    ("not UTF-8", with_footer(b'{"format": "ckpt\xff"}'), ckptfile.FormatError, "UTF-8", True),
    ("NaN literal", with_footer(parts(base)[1].replace(b'"format"', b'"nan": NaN, "format"', 1)),
     ckptfile.FormatError, "NaN is not JSON", True),
    ("duplicate JSON key", with_footer(parts(base)[1].replace(b'"format"', b'"tensors": [], "format"', 1)),
     ckptfile.FormatError, "duplicate key 'tensors'", False),
    ("JSON 600 deep", with_footer(parts(base)[1].replace(b'"format"', b'"x": %s, "format"' % deep(600).encode(), 1)),
     ckptfile.FormatError, "nested deeper than 528", True),
    ("JSON 100000 deep", with_footer(parts(base)[1].replace(b'"format"', b'"x": %s, "format"' % deep(100000).encode(), 1)),
     ckptfile.FormatError, "nested deeper than 528", True),
    ("footer a list", with_footer(b"[]"), ckptfile.FormatError, "not a ckpt footer", True),
    ("format other", edit(lambda f: f.__setitem__("format", "ckpt2")), ckptfile.FormatError, "not a ckpt footer", True),
    ("no tensor table", edit(lambda f: f.pop("tensors")), ckptfile.FormatError, "missing tensor table", True),
    ("entry not an object", edit(lambda f: f["tensors"].append(7)), ckptfile.FormatError, "entry is not an object", True),
    ("key a string", edit(setter(S, "key", "steps")), ckptfile.FormatError, "'key' is not a list of strings", False),
    ("key a number", edit(setter(S, "key", ["steps", 3])), ckptfile.FormatError, "'key' is not a list", True),
    ("unknown dtype", edit(setter(W, "dtype", "f12")), ckptfile.FormatError, "unknown dtype 'f12'", True),
    ("shape of floats", edit(setter(W, "shape", [2.0, 3])), ckptfile.FormatError, "'shape' is not a list of integers", True),
    ("negative shape", edit(setter(W, "shape", [-2, -3])), ckptfile.FormatError, "does not match its shape", True),
    ("shape overflow", edit(setter(W, "shape", [2 ** 40, 2 ** 40])), ckptfile.FormatError, "does not match its shape", True),
    ("shape huge", edit(setter(W, "shape", [2 ** 64, 0])), ckptfile.FormatError, "'shape' is not a list of integers", True),
    ("nbytes differs", edit(setter(W, "nbytes", 28)), ckptfile.FormatError, "does not match its shape", True),
    ("nbytes a float", edit(setter(W, "nbytes", 24.0)), ckptfile.FormatError, "'nbytes' is not an integer", True),
    ("nbytes a bool", edit(setter(W, "stored_nbytes", True)), ckptfile.FormatError, "'stored_nbytes' is not an integer", True),
    ("crc32 2^32", edit(setter(W, "crc32", 2 ** 32)), ckptfile.FormatError, "'crc32' is not an integer", True),
    ("offset negative", edit(setter(W, "offset", -64)), ckptfile.FormatError, "'offset' is not an integer", True),
    ("no codec", edit(lambda f: entry(f, W).pop("codec")), ckptfile.FormatError, "'codec' is not a string", True),
    ("unknown codec", edit(setter(W, "codec", "lz4")), ckptfile.FormatError, "unknown codec 'lz4'", True),
    # The library is not asked here: it throws std::bad_alloc on these files (reported).
    ("zlib claims 1 TiB", edit(lambda f: entry(f, S).update(shape=[2 ** 37], nbytes=2 ** 40), zbase),
     ckptfile.FormatError, "ratio above 1032:1", None),
    ("zlib claims 2^63-1 bytes", edit(lambda f: entry(f, S).update(dtype="u8", shape=[2 ** 63 - 1], nbytes=2 ** 63 - 1),
                                      zbase), ckptfile.FormatError, "ratio above 1032:1", None),
    ("raw stored size", edit(setter(W, "stored_nbytes", 20)), ckptfile.FormatError, "raw entry with stored size", True),
    ("offset unaligned", edit(setter(W, "offset", 65)), ckptfile.FormatError, "tensor data out of range", True),
    ("offset in the header", edit(setter(W, "offset", 0)), ckptfile.FormatError, "tensor data out of range", True),
    ("data past the footer", edit(setter(W, "offset", (len(parts(base)[0]) + 63) // 64 * 64)), ckptfile.FormatError,
     "tensor data out of range", True),
    ("overlap", edit(lambda f: entry(f, B).__setitem__("offset", entry(f, W)["offset"])), ckptfile.FormatError,
     "overlaps 'model.0\\.weight'", True),
    ("zlib bytes inflate short", edit(lambda f: entry(f, S).update(shape=[17], nbytes=136), zbase),
     ckptfile.FormatError, "cannot inflate", True),
    ("tree a number", edit(lambda f: f.__setitem__("tree", 5)), ckptfile.FormatError, "a node must be an object", True),
    ("tree empty node", edit(lambda f: f["tree"]["dict"].append(["e", {}])), ckptfile.FormatError,
     "a node must be an object", True),
    ("tensor index out of range", edit(lambda f: f["tree"]["dict"].append(["t", {"tensor": 4}])), ckptfile.FormatError,
     "tensor index out of range", True),
    ("tensor index -1", edit(lambda f: f["tree"]["dict"].append(["t", {"tensor": -1}])), ckptfile.FormatError,
     "tensor index out of range", True),
    ("tensor index 0.0", edit(lambda f: f["tree"]["dict"].append(["t", {"tensor": 0.0}])), ckptfile.FormatError,
     "tensor index out of range", True),
    ("dict item short", edit(lambda f: f["tree"]["dict"].append(["t"])), ckptfile.FormatError, "a dict item must be", True),
    ("dict key a number", edit(lambda f: f["tree"]["dict"].append([1, {"value": 1}])), ckptfile.FormatError,
     "a dict item must be", True),
    ("duplicate tree key", edit(lambda f: f["tree"]["dict"].append(["epoch", {"value": 4}])), ckptfile.FormatError,
     "duplicate key 'epoch'", True),
    ("unknown container", edit(lambda f: f["tree"].__setitem__("container", "set")), ckptfile.FormatError,
     "unknown container", True),
    ("node of nothing", edit(lambda f: f["tree"]["dict"].append(["n", {"container": "dict"}])), ckptfile.FormatError,
     'needs "dict", "tensor" or "value"', True),
    ("flat duplicate", edit(lambda f: (f.pop("tree"), f["tensors"][1].__setitem__("key", W))), ckptfile.FormatError,
     "duplicate entry", True),
    ("flat nested", edit(lambda f: (f.pop("tree"), f["tensors"][1].__setitem__("key", W + ["x"]))), ckptfile.FormatError,
     "entry nested under another entry", True),
]
# A data byte flipped: CorruptError naming the tensor and its offset (verify on).
w_off = json.loads(parts(base)[1])["tensors"][0]["offset"]
cases.append(("data byte", base[:w_off] + bytes([base[w_off] ^ 1]) + base[w_off + 1:], ckptfile.CorruptError,
              "checksum mismatch (at byte %d) in '%s' at 'model.0\\.weight'" % (w_off, tmp), True))
# zlib: a stream that does not inflate, and bytes after the stream (CRCs recomputed to reach the check).
zfoot = json.loads(parts(zbase)[1])
zs = entry(zfoot, S)
assert zs["codec"] == "zlib", zs
stream = zbase[zs["offset"]:zs["offset"] + zs["stored_nbytes"]]
bad_stream = stream[:2] + bytes([stream[2] ^ 0x40]) + stream[3:]
cases.append(("zlib stream broken", edit(setter(S, "crc32", zlib.crc32(bad_stream)),
                                          zbase[:zs["offset"]] + bad_stream + zbase[zs["offset"] + len(stream):]),
              ckptfile.FormatError, "cannot inflate", True))
cases.append(("zlib trailing bytes", edit(lambda f: entry(f, S).update(stored_nbytes=len(stream) + 1,
                                                                       crc32=zlib.crc32(stream + b"\0")), zbase),
              ckptfile.FormatError, "bytes after the zlib stream", False))

# Members neither reader knows: refused by both under strict (the default), skipped with strict=False.
unknown = [
    ("unknown top-level member", edit(lambda f: f.__setitem__("future", {"x": [1, 2]})), "'future' in the footer"),
    ("unknown entry member", edit(lambda f: entry(f, W).__setitem__("future", 1)), "'future' in a tensor entry"),
    ("unknown tree node member", edit(lambda f: f["tree"].__setitem__("future", 1)), "'future' in a tree node"),
]
cases += [(name, data, ckptfile.FormatError, "unknown member " + text, True) for name, data, text in unknown]

for name, data, cls, text, library_agrees in cases:
    write(data)
    for mmap in (True, False):
        try:
            load_all(mmap)
            raise AssertionError("%s: loaded" % name)
        except ckptfile.CkptError as e:
            check_error(e)
            assert type(e) is cls and text in str(e), (name, type(e).__name__, str(e))
    try:
        ckptfile.verify(tmp)  # structure and every CRC, without reading the tree's values
        assert name in ("zlib stream broken", "zlib trailing bytes", "zlib bytes inflate short"), (name, "verified")
    except ckptfile.CkptError as e:
        check_error(e)
    cpp = describe(tmp) if library_agrees is not None else None
    if library_agrees:
        assert cpp is None, (name, "the library loads this file")
    print("%-26s %s: %s%s" % (name, cls.__name__, text, {True: "", False: " (the library accepts it)",
                                                         None: " (the library not asked)"}[library_agrees]))

# ---- files both accept: read identically ----
accepted = [
    ("no tree: flat", edit(lambda f: f.pop("tree"))),
    ("tree null: flat", edit(lambda f: f.__setitem__("tree", None))),
    ("torch's dtype name", edit(setter(W, "dtype", "float32"))),
    ("a tensor used twice", edit(lambda f: f["tree"]["dict"].append(["again", {"tensor": 0}]))),
    ("header flags set", base[:12] + b"\xff\xff\xff\xff" + base[16:]),
    ("padding changed", base[:w_off + 24] + b"\x01" + base[w_off + 25:]),
]
for name, data in accepted:
    write(data)
    want = describe(tmp)
    assert want is not None, (name, "the library refuses it")
    check_tree(load_all(True), want)
    check_tree(load_all(False), want)
    print("%-26s read as the library reads it" % name)
write(base)
plain = describe(tmp)
for name, data, _ in unknown:
    write(data)
    for mmap in (True, False):
        check_tree(ckptfile.load(tmp, mmap=mmap, strict=False), plain)
    print("%-26s skipped with strict=False" % name)
print("ckptfile ok")
