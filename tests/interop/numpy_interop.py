"""NumPy interop, both directions, with real NumPy (/usr/bin/python3 + python3-numpy).

1. NumPy writes .npy/.npz (every dtype ckpt and NumPy share, the bf16/float8 raw-bits form,
   Fortran order, big-endian, 0-d, empty, format versions 1.0/2.0/3.0, np.savez and
   np.savez_compressed, hundreds of members); the C++ tool converts each to ckpt's JSON
   format and the values are compared byte for byte.
2. The C++ tool writes .npy/.npz (stored and deflated) from a JSON checkpoint made here, and
   rewrites a 65600-member np.savez archive (zip64 both ways); np.load reads them and the values are compared; zipfile checks every
   CRC-32; headers are checked to put the data 64-byte aligned.
usage: numpy_interop.py CONVERT_TOOL WORKDIR"""
import io
import json
import os
import shutil
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_common import NP, RAW_BITS, ckpt_dtype_of, decode_doc, encode_doc, le_bytes, run, sample  # noqa: E402

tool, work = sys.argv[1], sys.argv[2]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
SHAPES = [(), (0, 3), (17,), (2, 3, 1, 5)]
NUMPY_DTYPES = [d for d in NP if d not in RAW_BITS]
checked = 0


def p(name):
    return os.path.join(work, name)


def raw_bits(dtype, a):
    """bf16/f8 bits as NumPy writes them in ckpt's convention: a one-field structured array."""
    field, base = RAW_BITS[dtype]
    return a.astype(base).view([(field, base)]).reshape(a.shape)


def expect_same(got, key, dtype, a):
    global checked
    assert key in got, (key, sorted(got)[:10])
    gd, gs, gb = got[key]
    assert gd == dtype, (key, gd, dtype)
    assert gs == a.shape, (key, gs, a.shape)
    assert gb == le_bytes(a), key
    checked += 1


# ---- 1. NumPy writes, ckpt reads ---------------------------------------------------------
for dtype in NP:
    for i, shape in enumerate(SHAPES):
        a = sample(dtype, shape, 100 + i)
        if dtype in RAW_BITS:
            a = raw_bits(dtype, a)
        np.save(p("a.npy"), a)
        run(tool, p("a.npy"), p("a.json"))
        expect_same(decode_doc(p("a.json"))[0], "", dtype, a)

# Fortran order, big-endian, and both at once.
for dtype in ["f64", "f32", "f16", "i16", "u32", "i64", "c64", "c128", "bool", "u8"]:
    a = sample(dtype, (3, 4, 5), 7)
    variants = {"fortran": np.asfortranarray(a), "big": a.astype(a.dtype.newbyteorder(">")),
                "big_fortran": np.asfortranarray(a.astype(a.dtype.newbyteorder(">")))}
    for name, v in variants.items():
        np.save(p("v.npy"), v)
        hdr = open(p("v.npy"), "rb").read(128)
        if "fortran" in name:
            assert b"'fortran_order': True" in hdr, hdr
        if "big" in name and v.dtype.itemsize > 1:
            assert b"'>" in hdr, hdr
        run(tool, p("v.npy"), p("v.json"))
        expect_same(decode_doc(p("v.json"))[0], "", dtype, a)

# Format versions 2.0 and 3.0 (and 1.0 explicitly).
for version in [(1, 0), (2, 0), (3, 0)]:
    a = sample("f32", (4, 6), 3)
    with open(p("ver.npy"), "wb") as f:
        np.lib.format.write_array(f, a, version=version)
    run(tool, p("ver.npy"), p("ver.json"))
    expect_same(decode_doc(p("ver.json"))[0], "", "f32", a)

# np.savez (stored) and np.savez_compressed (deflated), with hundreds of members.
arrays = {}
for i in range(300):
    dtype = NUMPY_DTYPES[i % len(NUMPY_DTYPES)]
    arrays["layer%03d.%s" % (i, dtype)] = sample(dtype, SHAPES[i % len(SHAPES)], 1000 + i)
arrays["bits.bf16"] = raw_bits("bf16", sample("bf16", (5, 2), 9))
for save in (np.savez, np.savez_compressed):
    save(p("many.npz"), **arrays)
    run(tool, p("many.npz"), p("many.json"))
    got = decode_doc(p("many.json"))[0]
    assert len(got) == len(arrays), (len(got), len(arrays))
    for k, a in arrays.items():
        expect_same(got, k, ckpt_dtype_of(a), a)

# Arrays ckpt cannot hold are refused with a clear error, not misread.
np.save(p("obj.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
assert "pickle" in run(tool, p("obj.npy"), p("obj.json"), expect_fail=True)
np.save(p("str.npy"), np.array(["ab", "c"]))
assert "strings are not tensors" in run(tool, p("str.npy"), p("str.json"), expect_fail=True)
print("numpy -> ckpt ok:", checked, "arrays")

# ---- 2. ckpt writes, NumPy reads -----------------------------------------------------------
tensors = []
for dtype in NP:
    for i, shape in enumerate(SHAPES):
        tensors.append((["model", "dtype_%s" % dtype, "shape%d" % i], dtype, sample(dtype, shape, 500 + i)))
tensors.append((["flat.dotted.key"], "f32", sample("f32", (3,), 1)))
json.dump(encode_doc(tensors), open(p("in.json"), "w"))
before = checked
for codec in ("raw", "zlib"):
    out = p("out_%s.npz" % codec)
    run(tool, p("in.json"), out, "--codec", codec)
    zf = zipfile.ZipFile(out)
    assert zf.testzip() is None, "bad CRC"
    for info in zf.infolist():
        assert info.compress_type == (zipfile.ZIP_DEFLATED if codec == "zlib" else zipfile.ZIP_STORED), info
        if codec == "raw" and info.filename != "__ckpt_tree__.npy":  # stored members: data 64-aligned
            with open(out, "rb") as f:
                f.seek(info.header_offset + 26)
                n, m = np.frombuffer(f.read(4), "<u2")
                data = info.header_offset + 30 + int(n) + int(m)
                f.seek(data)
                head = f.read(12)
                hlen = int(np.frombuffer(head[8:10], "<u2")[0])
                assert (data + 10 + hlen) % 64 == 0, (info.filename, data, hlen)
    z = np.load(out)
    assert sorted(z.files) == sorted([".".join(k) for k, _, _ in tensors] + ["__ckpt_tree__"]), z.files[:5]
    for key, dtype, a in tensors:
        v = z[".".join(key)]
        if dtype in RAW_BITS:
            assert v.dtype.names == (RAW_BITS[dtype][0],), (key, v.dtype)
        else:
            assert v.dtype == np.dtype(NP[dtype]), (key, v.dtype, dtype)
        assert v.shape == a.shape and le_bytes(v) == le_bytes(a), key
        checked += 1
    tree = json.loads(z["__ckpt_tree__"].tobytes().decode())
    assert tree["format"] == "ckpt-npz" and tree["version"] == 1, tree.keys()

# Single .npy files in each format version; the data starts 64-byte aligned.
for dtype in NP:
    a = sample(dtype, (4, 3), 77)
    json.dump(encode_doc([([], dtype, a)], tree={"tensor": 0}), open(p("one.json"), "w"))
    for version in (0, 1, 2, 3):
        args = ["--npy-version", version] if version else []
        run(tool, p("one.json"), p("one.npy"), *args)
        raw = open(p("one.npy"), "rb").read()
        major = raw[6]
        assert version == 0 and major == 1 or major == version, (version, major)
        hlen = int(np.frombuffer(raw[8:10], "<u2")[0]) + 10 if major == 1 else int(np.frombuffer(raw[8:12], "<u4")[0]) + 12
        assert hlen % 64 == 0, hlen
        v = np.load(io.BytesIO(raw))
        if dtype in RAW_BITS:
            assert v.dtype.names == (RAW_BITS[dtype][0],), v.dtype
        assert v.shape == a.shape and le_bytes(v) == le_bytes(a), (dtype, version)
        checked += 1

# More than 65535 members: NumPy writes a zip64 archive, ckpt reads it and writes one back
# (switching to zip64 itself), NumPy reads that.
many = {"m%05d" % i: np.array([i, -i], "<i4") for i in range(65600)}
np.savez(p("big.npz"), **many)
run(tool, p("big.npz"), p("big_out.npz"))
for name in ("big.npz", "big_out.npz"):
    with open(p(name), "rb") as f:
        f.seek(-22 - 20 - 56, 2)
        assert f.read(4) == b"PK\x06\x06", "%s: no zip64 end-of-central-directory record" % name
z = np.load(p("big_out.npz"))
assert len(z.files) == 65601, len(z.files)
for i in list(range(0, 65600, 997)) + [65534, 65535, 65599]:
    assert z["m%05d" % i].tolist() == [i, -i], i
    checked += 1
assert zipfile.ZipFile(p("big_out.npz")).testzip() is None
print("ckpt -> numpy ok:", checked - before, "arrays")
print("numpy interop ok")
