"""Shared by the ckptfile tests: arguments, importing tools/python/ckptfile.py by path, the C++
oracle (`ckptfile_fixtures describe FILE OUT`: the library's own reading of FILE as JSON) and the
comparison of what the module read with it."""
import json
import math
import os
import subprocess
import sys

import numpy as np

# argv: FIXTURES_PROGRAM TOOLS_PYTHON_DIR OUTDIR --torch|--no-torch PROJECT_VERSION
FIXTURES, TOOLS_DIR, OUTDIR, TORCH_FLAG, PROJECT_VERSION = sys.argv[1:6]
assert TORCH_FLAG in ("--torch", "--no-torch"), TORCH_FLAG
os.makedirs(OUTDIR, exist_ok=True)
sys.path.insert(0, TOOLS_DIR)
import ckptfile  # noqa: E402

assert os.path.dirname(os.path.abspath(ckptfile.__file__)) == os.path.abspath(TOOLS_DIR), ckptfile.__file__
torch = None
if TORCH_FLAG == "--torch":
    import torch  # noqa: F811  (configure found it: it must import)


def write_fixtures():
    subprocess.run([FIXTURES, "write", OUTDIR], check=True, stdout=subprocess.DEVNULL)


def describe(path):
    """The library's reading of `path` (the description JSON), or None when it raises."""
    out = path + ".expected.json"
    r = subprocess.run([FIXTURES, "describe", path, out], stdout=subprocess.PIPE, universal_newlines=True, errors="replace")
    if r.returncode == 3 and r.stdout.startswith("error: "):
        return None
    assert r.returncode == 0, (path, r.returncode, r.stdout)
    with open(out) as f:
        return json.load(f)


def leaf_paths(desc, path=()):
    """(path, kind) of every tensor and value leaf of a description, in order."""
    if "dict" not in desc:
        return [(path, "tensor" if "tensor" in desc else "value")]
    return [p for k, child in desc["dict"] for p in leaf_paths(child, path + (k,))]


def same_json(a, b):
    """Equal JSON values, types included (3 is not 3.0 nor True), dict order included."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


def same_number(got, want):
    """An element read in Python against the library's value (NaN/inf spelled as strings)."""
    if isinstance(want, list):  # complex: [real, imag]
        return same_number(got.real, want[0]) and same_number(got.imag, want[1])
    if isinstance(want, str):
        return math.isnan(got) if want == "nan" else got == float(want)
    if isinstance(want, bool) or isinstance(want, int):
        return type(got) is type(want) and got == want
    return float(got) == want


def check_tensor(got, want, where):
    """A NumPy array read by the module against the library's tensor description."""
    size, dtype, _ = ckptfile.DTYPES[want["dtype"]]
    assert isinstance(got, np.ndarray), (where, type(got))
    assert got.dtype == dtype, (where, got.dtype, dtype)
    assert got.shape == tuple(want["shape"]), (where, got.shape, want["shape"])
    assert got.tobytes().hex() == want["hex"], (where, "bytes differ")
    if dtype.names:  # raw bits of a type NumPy lacks: little-endian unsigned of the element size
        bits = got[dtype.names[0]]
        assert bits.dtype == np.dtype("<u%d" % size), (where, bits.dtype)
        if want["dtype"] == "bf16":  # the upper half of a float32: the values follow from the bits
            values = (bits.astype("<u4").ravel() << 16).view("<f4").tolist()
            assert all(same_number(v, w) for v, w in zip(values, want["values"])), (where, values, want["values"])
        return
    values = got.ravel().tolist()
    assert len(values) == len(want["values"]), where
    assert all(same_number(v, w) for v, w in zip(values, want["values"])), (where, values, want["values"])


def check_torch_tensor(got, want, where):
    """A torch tensor read with torch=True against the library's tensor description."""
    assert isinstance(got, torch.Tensor), (where, type(got))
    assert got.dtype == getattr(torch, ckptfile.DTYPES[want["dtype"]][2]), (where, got.dtype)
    assert tuple(got.shape) == tuple(want["shape"]), (where, got.shape)
    if got.is_complex():
        values = torch.view_as_real(got).to(torch.float64).reshape(-1, 2).tolist()
        values = [complex(r, i) for r, i in values]
    elif got.dtype == torch.bool:
        values = got.reshape(-1).tolist()
    elif got.is_floating_point():
        values = got.to(torch.float64).reshape(-1).tolist()
    elif want["dtype"] in ("u16", "u32", "u64"):  # torch 2.x's few-op uint dtypes: through the bits
        size = ckptfile.DTYPES[want["dtype"]][0]
        signed = got.reshape(-1).view(getattr(torch, "int%d" % (8 * size)))
        values = [int(v) for v in signed.numpy().view("<u%d" % size)]
    else:
        values = [int(v) for v in got.to(torch.int64).reshape(-1).tolist()]
    assert len(values) == len(want["values"]), where
    assert all(same_number(v, w) for v, w in zip(values, want["values"])), (where, values, want["values"])


def check_tree(got, want, path=()):
    """The whole tree read by the module (NumPy mode) against the library's description."""
    if "dict" in want:
        assert isinstance(got, ckptfile.Dict), (path, type(got))
        assert got.container == want["container"], (path, got.container, want["container"])
        assert list(got) == [k for k, _ in want["dict"]], (path, list(got))
        for k, child in want["dict"]:
            check_tree(got[k], child, path + (k,))
    elif "tensor" in want:
        check_tensor(got, want["tensor"], path)
    else:
        assert not isinstance(got, (ckptfile.Dict, np.ndarray)), (path, type(got))
        assert same_json(got, want["value"]), (path, got, want["value"])


def torch_has(name):
    return isinstance(getattr(torch, name, None), torch.dtype)
