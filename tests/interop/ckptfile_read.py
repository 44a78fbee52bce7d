"""tools/python/ckptfile.py reads what the C++ library writes exactly as the library reads it.

ckptfile_fixtures writes .ckpt files (every dtype, raw and zlib codecs, 0-d and empty tensors,
dotted keys, nested dicts, list/int_dict containers, JSON values) and describes the library's
own reading of each; every container, key, order, value, dtype, shape, byte and element the
module returns must match -- mapped and copied, as NumPy arrays and as torch tensors. Mapped
tensors must be views of the file (read-only, 64-byte aligned, no copy), copies must not be.
Usage: see ckptfile_common.py."""
import os
import shutil

import numpy as np

from ckptfile_common import (OUTDIR, PROJECT_VERSION, check_torch_tensor, check_tree, ckptfile, describe, leaf_paths,
                             torch, torch_has, write_fixtures)

assert ckptfile.__version__ == PROJECT_VERSION, (ckptfile.__version__, PROJECT_VERSION)
write_fixtures()

for name in ("all.ckpt", "all_zlib.ckpt", "run.ckpt", "run_zlib.ckpt"):
    path = os.path.join(OUTDIR, name)
    want = describe(path)
    assert want is not None, path
    leaves = leaf_paths(want)
    with ckptfile.CkptFile(path) as f:
        # The tensor table names exactly the tree's tensor leaves; items() walks the tree in order.
        assert sorted(e.key for e in f.entries) == sorted(p for p, kind in leaves if kind == "tensor"), name
        assert [p for p, _ in f.items()] == [p for p, _ in leaves], name
        assert f.skeleton is not None and f.footer["format"] == "ckpt"
        f.verify()
        codecs = {e.key: e.codec for e in f.entries}
        if name == "all.ckpt":
            assert set(codecs.values()) == {"raw"}, codecs
        if name == "all_zlib.ckpt":  # the fixture exercises zlib for every dtype
            assert all(codecs[("repeat", d)] == "zlib" for d in ckptfile.DTYPES), codecs
        check_tree(f.tree(), want)
    check_tree(ckptfile.load(path), want)  # arrays outlive the closed file: they hold the mapping
    check_tree(ckptfile.load(path, mmap=False, verify=True), want)
    check_tree(ckptfile.load(path, verify=True), want)
    ckptfile.verify(path)

    if torch is not None:
        tensors = {}

        def collect(node, p=()):
            if "dict" in node:
                for k, child in node["dict"]:
                    collect(child, p + (k,))
            elif "tensor" in node:
                tensors[p] = node["tensor"]
        collect(want)
        for mmap in (True, False):
            with ckptfile.CkptFile(path, mmap=mmap) as f:
                for i, e in enumerate(f.entries):
                    tname = ckptfile.DTYPES[e.dtype][2]
                    if not torch_has(tname):  # torch 1.13: no float8, no uint16/32/64
                        try:
                            f.read(i, torch=True)
                            raise AssertionError("read a %s tensor into a torch without it" % tname)
                        except ckptfile.UnsupportedError as x:
                            assert x.key == e.key and tname in str(x) and path in str(x), str(x)
                        continue
                    t = f.read(i, torch=True)
                    check_torch_tensor(t, tensors[e.key], (name, e.key, mmap))
    print(name, "ok:", len(leaves), "leaves")


# Mapped tensors are views of the file (no copy): bytes changed in the file show through a
# mapping that has not written them (Linux shares unwritten MAP_PRIVATE pages with the page
# cache); a copied tensor keeps its bytes. Mapped arrays are read-only and 64-byte aligned.
src = os.path.join(OUTDIR, "all.ckpt")
path = os.path.join(OUTDIR, "patched.ckpt")
shutil.copyfile(src, path)
with ckptfile.CkptFile(path) as f, ckptfile.CkptFile(path, mmap=False) as g:
    i = next(i for i, e in enumerate(f.entries) if e.key == ("dtypes", "u8"))
    e = f.entries[i]
    mapped, copied = f.read(i), g.read(i)
    assert not mapped.flags.writeable and not mapped.flags.owndata and mapped.ctypes.data % 64 == 0
    assert copied.flags.writeable
    before = mapped.copy()
    with open(path, "r+b") as w:
        os.pwrite(w.fileno(), bytes(255 - b for b in before.tobytes()), e.offset)
    assert np.array_equal(mapped, 255 - before), "the mapped array is not a view of the file"
    assert np.array_equal(copied, before)
    # Every raw tensor with bytes is a view of the mapping, 64-byte aligned.
    for j, x in enumerate(f.entries):
        if x.nbytes:
            a = f.read(j)
            assert not a.flags.owndata and a.ctypes.data % 64 == 0, x.key
    if torch is not None:  # a write through a mapped tensor stays in this process, never the file
        t = f.read(i, torch=True)
        t += 1
        assert np.array_equal(t.numpy(), (255 - before) + np.uint8(1))  # uint8 wraps
        assert np.array_equal(ckptfile.CkptFile(path, mmap=False).read(i, verify=False), 255 - before)
print("ckptfile ok")
