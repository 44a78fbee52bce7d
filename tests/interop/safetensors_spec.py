"""A safetensors reader and writer written from the public spec (stdlib + numpy; Debian has no
safetensors package), used by safetensors_interop.py to check ckpt's files both ways, and the
generator of tests/data/safetensors/: byte-exact golden files in ckpt's conventions and one
bad file per validation rule of the reference implementation.

    python3 safetensors_spec.py make-fixtures tests/data/safetensors

Spec: 8-byte little-endian header length N; N bytes of UTF-8 JSON {"__metadata__": {str: str},
NAME: {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to the data); then
the data, contiguous, little-endian, C order."""
import json
import os
import struct
import sys

import numpy as np

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "F8_E4M3": "u1", "F8_E5M2": "u1",
          "I8": "i1", "I16": "<i2", "I32": "<i4", "I64": "<i8", "U8": "u1", "U16": "<u2", "U32": "<u4",
          "U64": "<u8", "BOOL": "?", "C64": "<c8"}
# The reference implementation sorts by this order (its Dtype enum, increasing alignment), descending.
REFERENCE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32",
                   "F32", "F64", "I64", "U64", "C64"]
MAX_HEADER = 100_000_000


def write(path, tensors, metadata=None, order="reference", align=8):
    """tensors: [(name, dtype, ndarray)]. order "reference": as the reference writer (by dtype
    alignment, then name); "given": as listed (may misalign). align: 8 as the reference pads
    the header, 64 for ckpt's convention (the data start is a multiple of 64)."""
    items = list(tensors)
    if order == "reference":
        items.sort(key=lambda t: (-REFERENCE_ORDER.index(t[1]), t[0]))
    elif order == "size":  # ckpt's order: decreasing element size, stable
        items.sort(key=lambda t: -np.dtype(DTYPES[t[1]]).itemsize)
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    off = 0
    blobs = []
    for name, dtype, a in items:
        b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        shape = list(a.shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if align == 8:
        text += b" " * ((8 - len(text) % 8) % 8)
    else:
        text += b" " * ((align - (8 + len(text)) % align) % align)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read(path):
    """(metadata, {name: (dtype, shape, ndarray)}, names in data order, data start), validating
    as the reference implementation does (assertions name the rule)."""
    raw = open(path, "rb").read()
    assert len(raw) >= 8, "header too small"
    (n,) = struct.unpack("<Q", raw[:8])
    assert n <= MAX_HEADER, "header too large"
    assert 8 + n <= len(raw), "invalid header length"
    text = raw[8:8 + n].decode("utf-8")
    assert text.startswith("{"), "invalid header start"
    pairs_seen = []

    def no_dups(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), "duplicate keys %r" % keys
        pairs_seen.append(keys)
        return dict(pairs)

    header = json.loads(text, object_pairs_hook=no_dups)
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        assert all(isinstance(v, str) for v in metadata.values()), "metadata values must be strings"
    infos = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    at = 0
    data = raw[8 + n:]
    out = {}
    for name, info in infos:
        begin, end = info["data_offsets"]
        assert begin == at and end >= begin, "offsets not contiguous at %s" % name
        dt = np.dtype(DTYPES[info["dtype"]])
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        assert end - begin == count * dt.itemsize, "size mismatch at %s" % name
        out[name] = (info["dtype"], tuple(info["shape"]), np.frombuffer(data[begin:end], dt).reshape(info["shape"]))
        at = end
    assert at == len(data), "metadata incomplete buffer"
    return metadata, out, [k for k, _ in infos], 8 + n


# ---- values shared with tests/formats/test_safetensors.cpp (keep the formulas in sync) ----
def values(dtype, n):
    """ckpt dtype name -> n deterministic values (raw bits for bf16/f8)."""
    i = np.arange(n)
    if dtype in ("f64", "f32", "f16"):
        return (i * 0.5 - 1).astype({"f64": "<f8", "f32": "<f4", "f16": "<f2"}[dtype])
    if dtype == "bf16":
        return ((i * 0.5 - 1).astype("<f4").view("<u4") >> 16).astype("<u2")
    if dtype in ("f8_e4m3", "f8_e5m2"):
        return (i * 5 + 1).astype("u1")
    if dtype == "bool":
        return i % 2 == 1
    if dtype in ("c64", "c128"):
        return (i * 0.5 - 1j * i).astype("<c8" if dtype == "c64" else "<c16")
    return (i * 3 + 1).astype({"i8": "i1", "i16": "<i2", "i32": "<i4", "i64": "<i8", "u8": "u1", "u16": "<u2",
                                "u32": "<u4", "u64": "<u8"}[dtype])


OURS = {"f64": "F64", "f32": "F32", "f16": "F16", "bf16": "BF16", "f8_e4m3": "F8_E4M3", "f8_e5m2": "F8_E5M2",
        "i8": "I8", "i16": "I16", "i32": "I32", "i64": "I64", "u8": "U8", "u16": "U16", "u32": "U32", "u64": "U64",
        "bool": "BOOL"}


def ckpt_file(path, tensors, tree, complex_=None):
    """A file in ckpt's conventions: tensors [(name, ckpt_dtype, array)], tree with named leaves."""
    md = {"format": "pt", "ckpt.tree": json.dumps(tree, separators=(",", ":"), sort_keys=True, ensure_ascii=False)}
    items = []
    for name, dtype, a in tensors:
        if dtype in ("c64", "c128"):
            real = a.view("<f4" if dtype == "c64" else "<f8").reshape(a.shape + (2,))
            items.append((name, "F32" if dtype == "c64" else "F64", real))
        else:
            items.append((name, OURS[dtype], a))
    if complex_:
        md["ckpt.complex"] = json.dumps(complex_, separators=(",", ":"), sort_keys=True)
    write(path, items, md, order="size", align=64)


def d(*items, container="dict"):
    return {"container": container, "dict": [list(i) for i in items]}


def t(name):
    return {"tensor": name}


def v(x):
    return {"value": x}


def make_golden(outdir):
    """The golden files (ckpt's writer must produce these bytes; see test_safetensors.cpp)."""
    w, b, s = values("f32", 6).reshape(2, 3), values("f32", 3), values("i64", 1).reshape(())
    ckpt_file(os.path.join(outdir, "basic.safetensors"), [("weight", "f32", w), ("bias", "f32", b), ("step", "i64", s)],
              d(["weight", t("weight")], ["bias", t("bias")], ["step", t("step")]))
    tensors = [("model.0.weight", "f32", values("f32", 4).reshape(2, 2)), ("model.layers.0.w", "f16", values("f16", 2)),
               ("optimizer.state.0.exp_avg", "f32", values("f32", 2))]
    tree = d(["model", d(["0.weight", t("model.0.weight")], ["layers", d(["0", d(["w", t("model.layers.0.w")])])])],
             ["optimizer", d(["state", d(["0", d(["exp_avg", t("optimizer.state.0.exp_avg")], ["step", v(3)])], container="int_dict")],
                             ["param_groups", v([{"lr": 0.5, "params": [0]}])])],
             ["epoch", v(7)], ["tag", v("\u03b1 run")], ["empty", d()], ["none", v(None)])
    ckpt_file(os.path.join(outdir, "nested.safetensors"), tensors, tree)
    names = ["f64", "f32", "f16", "bf16", "f8_e4m3", "f8_e5m2", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64",
             "bool", "c64", "c128"]
    tensors = [(n, n, values(n, 3)) for n in names]
    ckpt_file(os.path.join(outdir, "dtypes.safetensors"), tensors, d(*[[n, t(n)] for n in names]),
              complex_={"c64": "c64", "c128": "c128"})
    ckpt_file(os.path.join(outdir, "root_tensor.safetensors"), [("tensor", "f64", values("f64", 4).reshape(2, 2))], t("tensor"))
    ckpt_file(os.path.join(outdir, "empty.safetensors"), [], d())
    # A file another writer laid out without alignment: the F32 starts at data offset 3.
    write(os.path.join(outdir, "misaligned.safetensors"), [("a", "U8", values("u8", 3)), ("b", "F32", values("f32", 2))],
          {"format": "pt"}, order="given")


def make_bad(outdir):
    """One file per rule the reader enforces; test_safetensors.cpp expects the error of each."""
    def raw(name, header, data=b"", n=None):
        h = header.encode() if isinstance(header, str) else header
        with open(os.path.join(outdir, name + ".safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(h) if n is None else n) + h + data)

    f32 = '{"dtype":"F32","shape":[%s],"data_offsets":[%d,%d]}'
    with open(os.path.join(outdir, "too_small.safetensors"), "wb") as f:
        f.write(b"\x02\x00\x00\x00\x00")
    raw("header_too_large", "{}", n=MAX_HEADER + 1)
    raw("header_past_end", "{}", n=1000)
    raw("not_utf8", b'{"a\xff":' + (f32 % ("1", 0, 4)).encode() + b"}", b"\0" * 4)
    raw("bad_start", "[]")
    raw("bad_json", '{"a":' + f32 % ("1", 0, 4), b"\0" * 4)
    raw("duplicate_name", '{"a":' + f32 % ("1", 0, 4) + ',"a":' + f32 % ("1", 4, 8) + "}", b"\0" * 8)
    raw("metadata_not_strings", '{"__metadata__":{"k":1}}')
    raw("missing_field", '{"a":{"dtype":"F32","shape":[1]}}', b"\0" * 4)
    raw("negative_shape", '{"a":' + f32 % ("-1", 0, 4) + "}", b"\0" * 4)
    raw("bad_offsets", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', b"\0" * 4)
    raw("end_before_begin", '{"a":' + f32 % ("1", 4, 0) + "}", b"\0" * 4)
    raw("hole", '{"a":' + f32 % ("1", 0, 4) + ',"b":' + f32 % ("1", 8, 12) + "}", b"\0" * 12)
    raw("overlap", '{"a":' + f32 % ("2", 0, 8) + ',"b":' + f32 % ("2", 4, 12) + "}", b"\0" * 12)
    raw("size_mismatch", '{"a":' + f32 % ("2", 0, 4) + "}", b"\0" * 4)
    raw("shape_overflow", '{"a":' + f32 % ("4611686018427387904,4", 0, 4) + "}", b"\0" * 4)
    raw("data_past_end", '{"a":' + f32 % ("1", 0, 4) + "}", b"\0" * 8)
    raw("data_short", '{"a":' + f32 % ("2", 0, 8) + "}", b"\0" * 4)
    raw("unknown_dtype", '{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}', b"\0")
    tree = json.dumps({"container": "dict", "dict": [["a", {"tensor": "missing"}]]})
    raw("tree_names_missing", json.dumps({"__metadata__": {"ckpt.tree": tree}, "a": json.loads(f32 % ("1", 0, 4))}), b"\0" * 4)
    raw("complex_wrong_shape", json.dumps({"__metadata__": {"ckpt.complex": '{"a":"c64"}'}, "a": json.loads(f32 % ("3", 0, 12))}), b"\0" * 12)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "make-fixtures":
        sys.exit(__doc__)
    out = sys.argv[2]
    os.makedirs(os.path.join(out, "bad"), exist_ok=True)
    make_golden(out)
    make_bad(os.path.join(out, "bad"))
    print("wrote", out)
