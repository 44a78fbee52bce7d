"""safetensors interop, both directions, against safetensors_spec.py (a reader and writer written
from the public spec; Debian has no safetensors package).

1. The committed golden files and bad files are exactly what safetensors_spec.py generates.
2. ckpt writes (every dtype and shape, a nested tree, complex tensors): the spec reader
   validates the file, finds the data 64-byte aligned and every tensor's bytes equal.
3. The spec writer writes (the reference implementation's layout: tensors sorted by dtype then
   name, header padded to 8 bytes; and a misaligned layout): ckpt reads every tensor right,
   with and without mmap.
4. A ckpt file rewritten by the spec writer in another order keeps its tree (the stored tree
   names tensors), so ckpt restores it exactly.
5. Sharded: ckpt writes a set the spec reader can follow through the index, and reads a set
   written here in the Hugging Face layout.
usage: safetensors_interop.py CONVERT_TOOL WORKDIR DATA_DIR"""
import filecmp
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_spec as spec  # noqa: E402
from numpy_common import NP, decode_doc, encode_doc, le_bytes, run, sample  # noqa: E402

tool, work, data = sys.argv[1], sys.argv[2], sys.argv[3]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
checked = 0


def p(*name):
    return os.path.join(work, *name)


# ---- 1. fixtures are reproducible ----------------------------------------------------------
spec.make_golden(work)
os.makedirs(p("bad"))
spec.make_bad(p("bad"))
committed = os.path.join(data, "safetensors")
for sub in ("", "bad"):
    names = sorted(f for f in os.listdir(os.path.join(committed, sub)) if f.endswith(".safetensors"))
    assert names == sorted(f for f in os.listdir(p(sub)) if f.endswith(".safetensors")), (sub, names)
    for f in names:
        assert filecmp.cmp(os.path.join(committed, sub, f), p(sub, f), shallow=False), "%s differs from its generator" % f
print("fixtures ok:", len(os.listdir(committed)) - 1, "golden,", len(os.listdir(p("bad"))), "bad")

# ---- 2. ckpt writes, the spec reader reads ---------------------------------------------------
SHAPES = [(), (0, 3), (17,), (2, 3, 1, 5)]
tensors = []
for dtype in NP:
    for i, shape in enumerate(SHAPES):
        tensors.append((["model", dtype, "s%d" % i], dtype, sample(dtype, shape, 300 + i)))
tensors.append((["opt", "0.exp_avg"], "f32", sample("f32", (4,), 9)))
json.dump(encode_doc(tensors), open(p("in.json"), "w"))
run(tool, p("in.json"), p("out.safetensors"))
metadata, got, order, start = spec.read(p("out.safetensors"))
assert start % 64 == 0, start
assert metadata["format"] == "pt", metadata
tree = json.loads(metadata["ckpt.tree"])
assert tree["container"] == "dict" and tree["dict"][0][0] == "model", tree["dict"][0]
cplx = json.loads(metadata["ckpt.complex"])
sizes = [got[n][2].dtype.itemsize for n in order]
assert sizes == sorted(sizes, reverse=True), "tensors not laid out by decreasing element size"
for key, dtype, a in tensors:
    name = ".".join(key)
    st, shape, arr = got[name]
    if dtype in ("c64", "c128"):
        assert cplx[name] == dtype and st == ("F32" if dtype == "c64" else "F64"), (name, st)
        assert shape == a.shape + (2,), (name, shape)
    else:
        assert st == spec.OURS[dtype] and shape == a.shape, (name, st, shape)
    assert arr.tobytes() == le_bytes(a), name
    checked += 1
print("ckpt -> spec reader ok:", checked, "tensors")

# ---- 3. the spec writer writes, ckpt reads ---------------------------------------------------
ST = {v: k for k, v in spec.OURS.items()}
theirs = []
for st in spec.DTYPES:
    for i, shape in enumerate(SHAPES):
        ours = "c64" if st == "C64" else ST[st]
        theirs.append(("layer.%s.%d" % (st.lower(), i), st, ours, sample(ours, shape, 700 + i)))
for order in ("reference", "given"):
    spec.write(p("theirs.safetensors"), [(n, st, a) for n, st, _, a in theirs], {"format": "pt", "note": "spec writer"}, order=order)
    for mmap in ([], ["--mmap"]):
        run(tool, p("theirs.safetensors"), p("theirs.json"), *mmap)
        back, back_tree = decode_doc(p("theirs.json"))
        assert len(back) == len(theirs), (len(back), len(theirs))
        for name, st, ours, a in theirs:
            assert back[name] == (ours, a.shape, le_bytes(a)), (order, mmap, name)
            checked += 1
        # Names with dots are single keys: the file is flat.
        assert all(len(item[0].split(".")) == 3 for item in back_tree["dict"]), back_tree["dict"][:2]

# ---- 4. rewritten in another order by another writer, the tree still restores ---------------
metadata, got, order, _ = spec.read(p("out.safetensors"))
spec.write(p("rewritten.safetensors"), [(n, st, arr) for n, (st, _, arr) in sorted(got.items())], metadata, order="reference")
run(tool, p("out.safetensors"), p("a.json"))
run(tool, p("rewritten.safetensors"), p("b.json"))
a_doc, b_doc = json.load(open(p("a.json"))), json.load(open(p("b.json")))
assert a_doc["tree"] == json.loads(json.dumps(a_doc["tree"])) and a_doc["tree"]["dict"][0][0] == "model"
ta = {".".join(t["key"]): t for t in a_doc["tensors"]}
tb = {".".join(t["key"]): t for t in b_doc["tensors"]}
assert ta == tb, "tensors differ after a rewrite"


def shape_of(node, table):
    """The tree with tensor indices replaced by the tensors' keys (indices depend on order)."""
    if "tensor" in node:
        return {"tensor": ".".join(table[node["tensor"]]["key"])}
    if "dict" in node:
        return {"container": node.get("container"), "dict": [[k, shape_of(c, table)] for k, c in node["dict"]]}
    return node


assert shape_of(a_doc["tree"], a_doc["tensors"]) == shape_of(b_doc["tree"], b_doc["tensors"]), "tree changed by a rewrite"
print("spec writer -> ckpt ok:", checked, "tensors checked so far")

# ---- 5. sharded sets -------------------------------------------------------------------------
run(tool, p("in.json"), p("sharded"), "--shard", "500")
index = json.load(open(p("sharded", "model.safetensors.index.json")))
files = sorted(set(index["weight_map"].values()))
assert len(files) > 3 and files[0] == "model-00001-of-%05d.safetensors" % len(files), files
seen, total = {}, 0
for f in files:
    _, ts, _, start = spec.read(p("sharded", f))
    assert start % 64 == 0
    for name, (st, shape, arr) in ts.items():
        assert index["weight_map"][name] == f, name
        seen[name] = arr.tobytes()
        total += arr.nbytes
assert total == index["metadata"]["total_size"], (total, index["metadata"])
assert isinstance(index["metadata"]["ckpt.tree"], str)
for key, dtype, a in tensors:
    assert seen[".".join(key)] == le_bytes(a), key
    checked += 1
# A set in the Hugging Face layout written here; ckpt reads it from the directory.
os.makedirs(p("hf"))
groups = [theirs[i:i + 20] for i in range(0, len(theirs), 20)]
wm = {}
for i, g in enumerate(groups):
    f = "model-%05d-of-%05d.safetensors" % (i + 1, len(groups))
    spec.write(p("hf", f), [(n, st, a) for n, st, _, a in g], {"format": "pt"})
    wm.update({n: f for n, _, _, _ in g})
json.dump({"metadata": {"total_size": sum(a.nbytes for *_, a in theirs)}, "weight_map": wm},
          open(p("hf", "model.safetensors.index.json"), "w"), indent=2, sort_keys=True)
run(tool, p("hf"), p("hf.json"))
back, _ = decode_doc(p("hf.json"))
for name, st, ours, a in theirs:
    assert back[name] == (ours, a.shape, le_bytes(a)), name
    checked += 1
print("sharded ok")
print("safetensors interop ok:", checked, "tensors")
