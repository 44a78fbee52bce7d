#!/usr/bin/python3
"""Seeds for the pickle and pt fuzzers written by Python itself (run once by hand, as make_corpus):
   /usr/bin/python3 tests/fuzz/pickle_seeds.py tests/fuzz/corpus
pickle/py-*.pkl: plain objects in every pickle protocol (0-5), so the fuzzer starts from every
opcode family CPython emits; pt/py-*.pt: torch.save files (zip and the legacy format) holding
views, expanded and non-contiguous tensors, tied storages and optimizer-like state, whose
data.pkl also goes to pickle/."""
import collections
import io
import os
import pickle
import sys
import zipfile

out = sys.argv[1]
os.makedirs(os.path.join(out, "pickle"), exist_ok=True)
os.makedirs(os.path.join(out, "pt"), exist_ok=True)

plain = {
    "int": [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**63 - 1, -2**63, 2**64 - 1],
    "float": [0.0, -1.5, 1e308, float("inf")],
    "str": ["", "a", "é", "\u4e2d", "x" * 300],
    "bytes": b"\x00\x01",
    "tuple": (1, (2, 3), ()),
    "nested": {"a": [None, True, False], "b": {"c": {}}},
    "ordered": collections.OrderedDict([("w", 1), ("v", [1, 2])]),
}
shared = [1, 2]
plain["shared"] = [shared, shared]  # memo references
for proto in range(6):
    with open(os.path.join(out, "pickle", f"py-plain-p{proto}.pkl"), "wb") as f:
        pickle.dump(plain, f, protocol=proto)

try:
    import torch
except ImportError:
    print("torch not found: only plain pickles written")
    sys.exit(0)

base = torch.arange(12, dtype=torch.float32)
state = {
    "model": collections.OrderedDict([
        ("w", base.view(3, 4)),
        ("t", base.view(3, 4).t()),          # non-contiguous
        ("slice", base[2:6]),                # storage offset, shared storage
        ("e", torch.tensor(2.0).expand(3)),  # stride 0
        ("i", torch.arange(4, dtype=torch.int64)),
        ("h", torch.ones(2, dtype=torch.float16)),
        ("b", torch.ones(2, dtype=torch.bfloat16)),
        ("flag", torch.tensor([True, False])),
    ]),
    "optimizer": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
    "epoch": 4,
}
for name, zipped in (("zip", True), ("legacy", False)):
    path = os.path.join(out, "pt", f"py-{name}.pt")
    torch.save(state, path, _use_new_zipfile_serialization=zipped)
    if zipped:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
            with open(os.path.join(out, "pickle", "py-torch.pkl"), "wb") as f:
                f.write(z.read(pkl))


# What real projects torch.save besides tensors, read as inert records with
# LoadOptions::inert_objects (issue 16): argparse.Namespace, NumPy scalars and arrays (big-endian,
# Fortran order), sets, bytes, complex numbers, a dtype global, a whole module, and a payload
# whose __reduce__ names os.system (never called: nothing here is unpickled by Python).
class Payload:
    def __reduce__(self):
        return (os.system, ("true",))


import argparse
objects = {
    "args": argparse.Namespace(lr=0.1, epochs=3, name="run", betas=(0.9, 0.999)),
    "sets": [{1, 2}, frozenset({"a"})],
    "raw": [b"\x00\xff", bytearray(b"ab"), complex(1.0, -2.0)],
    "dtype": torch.float16,
    "model": torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)),
    "payload": Payload(),
}
try:
    import numpy as np
    objects["numpy"] = {
        "f64": np.float64(1.5), "i32": np.int32(-7), "b": np.bool_(True),
        "be": np.arange(6, dtype=">f4").reshape(2, 3),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
    }
except ImportError:
    print("numpy not found: the objects seed has no NumPy values")
path = os.path.join(out, "pt", "py-objects.pt")
torch.save(objects, path)
with zipfile.ZipFile(path) as z:
    pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
    with open(os.path.join(out, "pickle", "py-objects.pkl"), "wb") as f:
        f.write(z.read(pkl))
print("wrote", os.path.join(out, "pickle"), "and", os.path.join(out, "pt"))
