"""Shared by the NumPy and safetensors interop scripts: ckpt's JSON checkpoint format
(archive/json.hpp) encoded and decoded with numpy, and running the C++ convert tool.

A ckpt-json document lists tensors as {"key": [...], "dtype": "f32", "shape": [...],
"data": base64 of little-endian C-order bytes}; bf16 and float8 travel as their raw bits
(uint16 / uint8 arrays) since NumPy has no such dtypes."""
import base64
import json
import subprocess

import numpy as np

# ckpt dtype name -> numpy dtype holding the same bytes
NP = {
    "f64": "<f8", "f32": "<f4", "f16": "<f2", "bf16": "<u2", "f8_e4m3": "u1", "f8_e5m2": "u1",
    "i8": "i1", "i16": "<i2", "i32": "<i4", "i64": "<i8", "u8": "u1", "u16": "<u2", "u32": "<u4",
    "u64": "<u8", "bool": "?", "c64": "<c8", "c128": "<c16",
}
# the structured raw-bits dtypes ckpt writes to .npy for the dtypes NumPy lacks
RAW_BITS = {"bf16": ("bfloat16", "<u2"), "f8_e4m3": ("float8_e4m3fn", "u1"), "f8_e5m2": ("float8_e5m2", "u1")}


def ckpt_dtype_of(a):
    """Our dtype name for a numpy array (native or raw-bits structured)."""
    if a.dtype.names:
        for ours, (field, _) in RAW_BITS.items():
            if a.dtype.names == (field,):
                return ours
        raise ValueError("unexpected structured dtype %r" % (a.dtype,))
    for ours, d in NP.items():
        if ours in RAW_BITS:
            continue
        if np.dtype(d).newbyteorder("=") == a.dtype.newbyteorder("="):
            return ours
    raise ValueError("no ckpt dtype for %r" % (a.dtype,))


def le_bytes(a):
    """The little-endian C-order bytes of a (raw bits for structured raw-bits arrays)."""
    if a.dtype.names:
        a = a[a.dtype.names[0]]
    return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"))).tobytes()


def sample(dtype, shape, seed):
    """Deterministic values of a ckpt dtype as a numpy array (raw bits for bf16/f8)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape)) if shape else 1
    d = np.dtype(NP[dtype])
    if dtype == "bool":
        v = rng.integers(0, 2, n).astype("?")
    elif dtype in ("f64", "f32", "f16"):
        v = (rng.standard_normal(n) * 10).astype(d)
    elif dtype in ("c64", "c128"):
        v = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(d)
    elif dtype == "bf16":
        v = (rng.standard_normal(n).astype("<f4").view("<u4") >> 16).astype("<u2")
    else:
        info = np.iinfo(d)
        v = rng.integers(info.min, info.max, n, dtype=d, endpoint=True)
    return v.reshape(shape)


def encode_doc(tensors, tree=None):
    """A ckpt-json document from [(key_list, ckpt_dtype, array)]."""
    doc = {"format": "ckpt-json", "version": 1, "tensors": []}
    for key, dtype, a in tensors:
        doc["tensors"].append({"key": list(key), "dtype": dtype, "shape": list(a.shape),
                               "data": base64.b64encode(le_bytes(a)).decode()})
    if tree is not None:
        doc["tree"] = tree
    return doc


def decode_doc(path):
    """{dotted-unescaped key: (ckpt_dtype, shape, bytes)} and the tree of a ckpt-json file."""
    doc = json.load(open(path))
    assert doc["format"] == "ckpt-json", doc.get("format")
    out = {}
    for t in doc["tensors"]:
        out[".".join(t["key"])] = (t["dtype"], tuple(t["shape"]), base64.b64decode(t["data"]))
    return out, doc.get("tree")


def run(tool, *args, expect_fail=False):
    r = subprocess.run([tool] + [str(a) for a in args], capture_output=True, text=True)
    if expect_fail:
        assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
        return r.stdout
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout
