#!/usr/bin/python3
"""ckpt's .pt backend against real PyTorch (run by ctest with /usr/bin/python3, label interop).

    torch_interop.py TOOL WORKDIR read|resave|write|reject

  read    torch.save's a zoo (every common dtype, 0-d, empty, special values, non-contiguous views
          with storage offsets, transposes, expand()ed views (stride 0), tied weights, a module
          state_dict with buffers, Adam and SGD-momentum state dicts, the seed's checkpoint
          layout, pickle protocols 2-5, the legacy pre-1.6 format) and dumps what torch reads as NAME.expected.npz/.json;
          `TOOL check` reads each file with ckpt and compares.
  resave  ckpt reads each zoo file and writes it again (directly, through .ckpt, through .json,
          and deflated); torch.load must give back the same objects, modules must
          load_state_dict them, and whatever torch's weights_only=True loader takes in torch's own
          file of the same objects (all-tensor files on torch 1.13; floats, ints, strings too on
          2.x) it must take in ours.
  write   ckpt writes files from scratch (`TOOL write`); torch checks values, types (int keys,
          ints vs floats), module and Adam load_state_dict, tied storage, the zip layout.
  reject  pickles that run code under torch.load (os.system via __reduce__, builtins.eval, a
          payload hidden in a tensor's arguments, protocol 4) are refused by ckpt, and the test
          checks that nothing ran — after checking that each payload does run under torch.load.
"""
import collections
import io
import json
import math
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy as np
import torch

TOOL, WORK, WHAT = sys.argv[1], sys.argv[2], sys.argv[3]


def run(*args, ok=True):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True)
    print(r.stdout, end="")
    if ok and r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(args)} exited {r.returncode}\n{r.stderr}")
    return r


def fresh(sub):
    d = os.path.join(WORK, sub)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


# ---- the zoo -------------------------------------------------------------------------------------

def zoo():
    g = torch.Generator().manual_seed(1234)
    cases = {}
    d = {}
    for dt in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        d[str(dt)[6:]] = torch.randn(3, 4, generator=g).to(dt)
    for dt in (torch.int8, torch.int16, torch.int32, torch.uint8):
        info = torch.iinfo(dt)
        d[str(dt)[6:]] = torch.randint(info.min, info.max, (3, 4), generator=g, dtype=dt)
    d["int64"] = torch.tensor([-2**63, 2**63 - 1, 0, -1, 2**40], dtype=torch.int64)
    d["bool"] = torch.rand(3, 4, generator=g) > 0.5
    d["complex64"] = torch.randn(2, 3, dtype=torch.complex64, generator=g)
    d["scalar"] = torch.tensor(3.25)
    d["scalar_int"] = torch.tensor(-7)
    d["empty"] = torch.zeros(0, 5)
    d["empty_3d"] = torch.ones(2, 0, 3, dtype=torch.int32)
    d["special"] = torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0, 1e-45, 3.4e38, 1e-40])
    cases["dtypes"] = d

    base = torch.arange(24.0).reshape(4, 6)
    cases["views"] = {"base": base, "row": base[2], "col": base[:, 3], "block": base[1:3, 2:5],
                      "transposed": base.t(), "strided": base[::2, ::3], "flat_slice": base.view(-1)[5:17],
                      "only_view": torch.arange(100, dtype=torch.int16)[10:20],
                      "permuted": torch.arange(60.0).reshape(3, 4, 5).permute(2, 0, 1),
                      "expanded": torch.arange(3.0).expand(4, 3), "broadcast": torch.tensor(2.5).expand(7)}

    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 4)
            self.head = torch.nn.Linear(4, 10, bias=False)
            self.head.weight = self.embed.weight
    cases["tied"] = Tied().state_dict()

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5))
    net.train()
    for _ in range(3):
        net(torch.randn(2, 3, 8, 8))
    cases["module"] = net.state_dict()

    lin = torch.nn.Linear(4, 3)
    adam = torch.optim.Adam(lin.parameters(), lr=0.01, amsgrad=True)
    sgd_lin = torch.nn.Linear(4, 3)
    sgd = torch.optim.SGD(sgd_lin.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        for m, o in ((lin, adam), (sgd_lin, sgd)):
            o.zero_grad()
            m(torch.randn(5, 4)).pow(2).mean().backward()
            o.step()
    cases["adam"] = adam.state_dict()
    cases["sgd"] = sgd.state_dict()
    cases["seed_layout"] = {"epoch": 5, "model_state_dict": lin.state_dict(),
                            "optimizer_state_dict": adam.state_dict(), "loss": 0.125}
    cases["values"] = {"weights": torch.ones(2, 2),
                       "cfg": {"lr": 0.1, "layers": [1, 2, 3], "name": "n\u00e9t", "flag": True, "none": None,
                               "pair": (1, 2.5), "nested": {"deep": [[1, 2], [3]]}},
                       "int_keys": {0: "a", 5: "b", -3: "c"}, "mixed_list": [torch.zeros(3), 3, "x"],
                       "big": 2**63 + 5, "empty_list": []}
    return cases


def bytes_of(t):
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def flatten(obj, prefix, tensors, values):
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach()
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), tensors, values)
    elif isinstance(obj, (list, tuple)) and obj:
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}.{i}" if prefix else str(i), tensors, values)
    else:
        values[prefix] = list(obj) if isinstance(obj, tuple) else obj


def write_expected(path_base, obj):
    tensors, values = {}, {}
    flatten(obj, "", tensors, values)
    arrays = {}
    for k, t in tensors.items():
        if t.dtype == torch.bfloat16:
            arrays[k + "@bf16"] = t.contiguous().view(torch.int16).numpy().view(np.uint16)
        else:
            arrays[k] = t.contiguous().numpy()
    np.savez(path_base + ".expected.npz", **arrays)
    spec = {"tensors": {k: {"dtype": str(t.dtype)[6:], "shape": list(t.shape)} for k, t in tensors.items()},
            "values": values, "top_level_type": type(obj).__name__}
    with open(path_base + ".expected.json", "w") as f:
        json.dump(spec, f)


def make_zoo(d):
    cases = zoo()
    for name, obj in cases.items():
        torch.save(obj, os.path.join(d, name + ".pt"))
        write_expected(os.path.join(d, name), obj)
    small = {"w": torch.arange(6.0).reshape(2, 3).t(), "n": 3, "t": (1, 2), "od": collections.OrderedDict(a=1)}
    for proto in (3, 4, 5):
        torch.save(small, os.path.join(d, f"protocol{proto}.pt"), pickle_protocol=proto)
        write_expected(os.path.join(d, f"protocol{proto}"), small)
    for name in ("views", "module", "dtypes"):
        torch.save(cases[name], os.path.join(d, f"legacy_{name}.pt"), _use_new_zipfile_serialization=False)
        write_expected(os.path.join(d, f"legacy_{name}"), cases[name])
    return cases


# ---- comparing torch objects ----------------------------------------------------------------------

def same(a, b, path="root"):
    """b (written by ckpt) equals a (the original): tuples may come back as lists and
    OrderedDicts as dicts; everything else keeps its type, int keys included."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), f"{path}: {type(b)} is not a tensor"
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {b.dtype}{list(b.shape)} != {a.dtype}{list(a.shape)}"
        assert bytes_of(a) == bytes_of(b), f"{path}: values differ"
    elif isinstance(a, dict):
        assert type(b) is dict or type(b) is type(a), f"{path}: {type(b)} is not a dict"
        assert sorted(map(repr, a)) == sorted(map(repr, b)), f"{path}: keys {list(b)} != {list(a)}"
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(b) is list or type(b) is type(a), f"{path}: {type(b)} is not a list"
        assert len(a) == len(b), f"{path}: length {len(b)} != {len(a)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}.{i}")
    else:
        assert type(a) is type(b), f"{path}: {type(b).__name__} {b!r} is not a {type(a).__name__}"
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), f"{path}: {b!r} != {a!r}"


def trusted_load(path):
    """torch.load that runs the whole pickle, as torch < 2.6 did by default (torch 2.6 defaults
    to weights_only=True): for files torch wrote itself, and to get at what we wrote."""
    return torch.load(path, weights_only=False)


def torch_weights_only_can(obj):
    """Whether torch's weights_only=True loader reads torch.save's own file of `obj`: torch 1.13's
    takes tensors and containers but no floats, 2.x's takes floats, ints, str, bytes too."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    try:
        torch.load(buf, weights_only=True)
        return True
    except Exception:
        return False


WEIGHTS_ONLY = {"loaded": 0, "not_by_torch": 0}  # load_ours' tally, printed at the end


def load_ours(path):
    """Loads a file ckpt wrote. Whatever torch's weights_only=True loader (the default since torch
    2.6) takes in torch's own file of the same objects, it must take in ours, with equal values."""
    obj = trusted_load(path)
    if torch_weights_only_can(obj):
        try:
            safe = torch.load(path, weights_only=True)
        except Exception as e:
            sys.exit(f"FAILED: {path}: torch.load(weights_only=True) refuses ckpt's file but takes torch's own "
                     f"file of the same objects: {e}")
        same(obj, safe, path + " (weights_only=True)")
        WEIGHTS_ONLY["loaded"] += 1
        return safe
    WEIGHTS_ONLY["not_by_torch"] += 1
    return obj


def check_layout(path):
    """The zip is laid out as torch.save's: archive/, protocol-2 data.pkl, version, byteorder,
    storages 64-byte aligned."""
    raw = open(path, "rb").read()
    z = zipfile.ZipFile(path)
    names = z.namelist()
    assert all(n.startswith("archive/") for n in names), names
    assert z.read("archive/data.pkl")[:2] == b"\x80\x02"
    assert z.read("archive/version") == b"3\n"
    assert z.read("archive/byteorder") == b"little"
    for info in z.infolist():
        if info.filename.startswith("archive/data/"):
            n, e = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
            assert (info.header_offset + 30 + n + e) % 64 == 0, f"{info.filename} not 64-byte aligned"


# ---- the four parts -------------------------------------------------------------------------------

def part_read():
    d = fresh("read")
    cases = make_zoo(d)
    r = run("check", d)
    n = len(cases) + 6
    assert f"checked {n} files, 0 failed" in r.stdout, f"expected {n} files checked"


def part_resave():
    src = fresh("resave-src")
    out = fresh("resave-out")
    cases = make_zoo(src)
    count = 0
    for name in sorted(os.listdir(src)):
        if not name.endswith(".pt"):
            continue
        original = trusted_load(os.path.join(src, name))
        for variant in ([], [".ckpt"], [".json"], ["--zlib"]):
            dst = os.path.join(out, name[:-3] + "".join(variant).replace("--", "_") + ".pt")
            run("resave", os.path.join(src, name), dst, *variant)
            check_layout(dst)
            same(original, load_ours(dst), name)
            count += 1
    # modules take our files, and tied weights stay tied
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5))
    for v in ("module.pt", "module.ckpt.pt", "module.json.pt", "legacy_module.pt"):
        net.load_state_dict(torch.load(os.path.join(out, v), weights_only=True))
        same(cases["module"], net.state_dict(), v)
    tied = torch.load(os.path.join(out, "tied.pt"), weights_only=True)
    assert tied["embed.weight"].data_ptr() == tied["head.weight"].data_ptr(), "tied weights were untied"
    opt = torch.optim.Adam(torch.nn.Linear(4, 3).parameters())
    opt.load_state_dict(load_ours(os.path.join(out, "adam.json.pt")))
    same(cases["adam"]["state"], opt.state_dict()["state"], "adam")
    print(f"resaved {count} files; torch.load gives back the same objects; weights_only=True took "
          f"{WEIGHTS_ONLY['loaded']}, {WEIGHTS_ONLY['not_by_torch']} hold what torch {torch.__version__}'s "
          f"weights_only loader refuses in torch's own files too")


def formula(dtype, shape):
    n = math.prod(shape)
    v = torch.tensor([(i * 7 % 11) - 5 for i in range(n)], dtype=torch.int64)
    if dtype == torch.bool:
        return (torch.arange(n) % 2 == 1).reshape(shape)
    if dtype.is_complex:
        return torch.complex(0.25 * v.double(), -0.25 * v.double()).to(dtype).reshape(shape)
    if dtype.is_floating_point:
        return (0.25 * v.double()).to(dtype).reshape(shape)
    scale = {torch.int8: 1, torch.int16: 1000, torch.int32: 100000, torch.int64: 10000000000}
    if dtype == torch.uint8:
        return (v + 5).to(dtype).reshape(shape)
    return (v * scale[dtype]).to(dtype).reshape(shape)


def part_write():
    d = fresh("write")
    run("write", d)
    for f in os.listdir(d):
        check_layout(os.path.join(d, f))
    dtypes = [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int8, torch.int16, torch.int32,
              torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128]
    for fname in ("dtypes.pt", "zlib.pt"):
        t = torch.load(os.path.join(d, fname), weights_only=True)
        for dt in dtypes:
            same(formula(dt, (2, 3)), t[str(dt)[6:]], f"{fname}:{dt}")
        same(torch.tensor(1.5), t["scalar"], "scalar")
        same(torch.zeros(0, 3), t["empty"], "empty")
        same(formula(torch.float32, (1, 70)), t["long_row"], "long_row")
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zipfile.ZipFile(os.path.join(d, "zlib.pt")).infolist()
               if i.filename.startswith("archive/data/") and i.file_size > 0)

    def sequential():
        return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    want = {"0.weight": (4, 3), "0.bias": (4,), "2.weight": (2, 4), "2.bias": (2,)}
    m = sequential()
    m.load_state_dict(torch.load(os.path.join(d, "module.pt"), weights_only=True))
    for k, shape in want.items():
        same(formula(torch.float32, shape), m.state_dict()[k], k)

    ck = load_ours(os.path.join(d, "seed.pt"))
    assert list(ck) == ["epoch", "model_state_dict", "optimizer_state_dict", "loss"], list(ck)
    assert type(ck["epoch"]) is int and ck["epoch"] == 3
    assert type(ck["loss"]) is float and ck["loss"] == 0.12
    m = sequential()
    m.load_state_dict(ck["model_state_dict"])
    opt = torch.optim.Adam(m.parameters(), lr=0.5)
    opt.load_state_dict(ck["optimizer_state_dict"])
    state = opt.state_dict()["state"]
    assert list(state) == [0, 1, 2, 3], list(state)
    assert opt.param_groups[0]["lr"] == 0.001 and list(opt.param_groups[0]["betas"]) == [0.9, 0.999]
    for i, (p, shape) in enumerate(zip(m.parameters(), want.values())):
        same(formula(torch.float32, shape), state[i]["exp_avg"], f"exp_avg {i}")
        same(formula(torch.float32, shape) ** 2, state[i]["exp_avg_sq"], f"exp_avg_sq {i}")
    m(torch.ones(1, 3)).sum().backward()
    opt.step()  # the loaded state is usable
    assert opt.state_dict()["state"][0]["step"].item() == 3.0

    tied = torch.load(os.path.join(d, "tied.pt"), weights_only=True)
    assert tied["embed.weight"].data_ptr() == tied["head.weight"].data_ptr(), "tied tensors do not share storage"
    same(formula(torch.float32, (5, 3)), tied["head.weight"], "tied")

    n = load_ours(os.path.join(d, "nested.pt"))
    assert n["cfg"]["ints"] == {1: "a", 20: "b"} and all(type(k) is int for k in n["cfg"]["ints"]), n["cfg"]
    same(formula(torch.int64, (3,)), n["list"][0], "list.0")
    assert n["list"][1] == 1 and type(n["list"]) is list
    same({"x": [1, 2.5, None, True, "s\u00e9"], "big": 2**64 - 1}, n["values"], "values")
    print("torch reads what ckpt wrote: values, types, module and Adam state, tied storage")


def evil_file(path, marker, kind):
    class Evil:
        def __reduce__(self):
            if kind == "eval":
                return (eval, (f"__import__('os').system('touch {marker}')",))
            return (os.system, (f"touch {marker}",))

    class FakeStorage:
        pass

    class Tensor:  # _rebuild_tensor_v2(storage, 0, (4,), (1,), False, hooks) as torch.save writes it
        def __init__(self, hooks):
            self.hooks = hooks

        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, (FakeStorage(), 0, (4,), (1,), False, self.hooks))

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 4) if isinstance(obj, FakeStorage) else None

    if kind == "root":
        obj = Evil()
    elif kind == "tensor":  # the payload hidden in an allowed call's arguments
        obj = {"weight": Tensor(Evil())}
    else:  # next to a real tensor in a state dict
        obj = {"w": Tensor(collections.OrderedDict()), "x": Evil()}
    buf = io.BytesIO()
    P(buf, protocol=4 if kind == "proto4" else 2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/data/0", struct.pack("<4f", 1, 2, 3, 4))
        z.writestr("archive/version", "3\n")


def part_reject():
    d = fresh("reject")
    for kind, name in (("root", "posix.system"), ("nested", "posix.system"), ("tensor", "posix.system"),
                       ("proto4", "posix.system"), ("eval", "builtins.eval")):
        live, quiet = os.path.join(d, f"ran-{kind}-live"), os.path.join(d, f"ran-{kind}")
        # the payload is real: torch.load with weights_only=False (the default before torch 2.6) runs it
        evil_file(os.path.join(d, f"live-{kind}.pt"), live, kind)
        try:
            trusted_load(os.path.join(d, f"live-{kind}.pt"))
        except Exception:
            pass  # the payload ran while the load was being built; what is left may not be a state dict
        assert os.path.exists(live), f"{kind}: the payload did not run under torch.load, so this test proves nothing"
        # ckpt refuses the same file, naming the global, and nothing runs
        path = os.path.join(d, f"evil-{kind}.pt")
        evil_file(path, quiet, kind)
        r = run("reject", path)
        assert f"'{name}'" in r.stdout and "not allowed" in r.stdout, r.stdout
        assert not os.path.exists(quiet), f"{kind}: the payload ran"
    print("every payload runs under torch.load and is refused by ckpt; nothing ran")


{"read": part_read, "resave": part_resave, "write": part_write, "reject": part_reject}[WHAT]()
print(f"torch interop ok ({WHAT}, torch {torch.__version__})")
