#!/usr/bin/python3
"""The checkpoints real PyTorch projects write, through the ckpt tool (issue 16; run by ctest
with /usr/bin/python3 and Debian's python3-torch, -numpy and -torchvision, label interop).

    torch_objects.py CKPT_TOOL WORKDIR

Each case is written by torch.save here: torchvision state dicts (BatchNorm buffers, 0-d
num_batches_tracked), a torchvision-reference-script checkpoint (argparse.Namespace args,
SGD-momentum and StepLR state), NumPy scalars and arrays of every dtype (both byte orders,
Fortran order, np.random's state tuple), a Lightning-shaped dict (an AttributeDict of
hyper-parameters, callbacks, loops), and a whole pickled nn.Sequential. For each: `ckpt ls`
lists the tensors torch holds (dtype, shape, where in the tree), `ckpt convert` to
.safetensors and back to .pt gives a file torch.load turns into the same values — objects that
round-trip as themselves (Namespace, NumPy values as Python numbers and tensors), the rest as
dicts of their fields — and for the training checkpoints, the model and optimizer resumed from
the round-tripped file take the same next step, bit for bit, as the original ones. Then an
os.system payload: it runs under torch.load; ckpt refuses it without --inert-objects, reads it
as a record with it, writes it back as a plain dict — and nothing ever runs.
"""
import argparse
import collections
import copy
import io
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import types

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_common  # noqa: E402
import safetensors_spec  # noqa: E402

TOOL, WORK = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
CKPT_DTYPE = {torch.float64: "f64", torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.int8: "i8",
              torch.int16: "i16", torch.int32: "i32", torch.int64: "i64", torch.uint8: "u8", torch.bool: "bool",
              torch.complex64: "c64", torch.complex128: "c128"}


def ckpt(*args, rc=0):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True)
    if r.returncode != rc:
        sys.exit(f"FAILED: ckpt {' '.join(args)} exited {r.returncode}, expected {rc}\n{r.stdout}\n{r.stderr}")
    return r


# ---- what ckpt's tree and a round-tripped file hold for each Python object ----------------------

def qualname(obj):
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def native(a):
    """A NumPy array as the tensor ckpt reads: native byte order, C order."""
    return torch.from_numpy(a.astype(a.dtype.newbyteorder("="), order="C"))


def expect_back(obj):
    """What torch.load gives for `obj` after ckpt read it and wrote it back to .pt."""
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, np.ndarray):
        return native(obj)
    if isinstance(obj, np.generic):
        return obj.item()  # a Python bool / int / float / complex
    if isinstance(obj, argparse.Namespace):
        return argparse.Namespace(**{k: expect_back(v) for k, v in vars(obj).items()})
    if isinstance(obj, torch.nn.Module):  # not written back as itself: a dict of its fields
        return {"$class": qualname(obj), "$state": expect_back(obj.__dict__)}
    if isinstance(obj, dict) and type(obj) not in (dict, collections.OrderedDict):  # a dict subclass
        r = {"$class": qualname(obj), "$items": {k: expect_back(v) for k, v in obj.items()}}
        if obj.__dict__:
            r["$state"] = expect_back(obj.__dict__)
        return r
    if isinstance(obj, dict):
        return {k: expect_back(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [expect_back(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return type(obj)(expect_back(v) for v in obj)
    return obj  # None, bool, int, float, complex, str, bytes, bytearray, torch.dtype


def tree_tensors(obj, keys=()):
    """{keys: tensor} of every tensor in ckpt's tree of `obj` (records as their fields)."""
    out = {}
    if isinstance(obj, torch.Tensor):
        out[keys] = obj.detach()
    elif isinstance(obj, np.ndarray):
        out[keys] = native(obj)
    elif isinstance(obj, argparse.Namespace):
        out.update(tree_tensors(vars(obj), keys + ("$state",)))
    elif isinstance(obj, torch.nn.Module):
        out.update(tree_tensors(obj.__dict__, keys + ("$state",)))
    elif isinstance(obj, dict) and type(obj) not in (dict, collections.OrderedDict):
        out.update(tree_tensors(dict(obj), keys + ("$items",)))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(tree_tensors(v, keys + (str(k),)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(tree_tensors(v, keys + (str(i),)))
    return out


def bytes_of(t):
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def same(a, b, path="root"):
    """b (torch.load of the round-tripped file) equals a (expect_back of the original), types included
    (dicts held as JSON values come back with their keys sorted)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), f"{path}: {type(b).__name__} is not a tensor"
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {b.dtype}{list(b.shape)} != {a.dtype}{list(a.shape)}"
        assert bytes_of(a) == bytes_of(b), f"{path}: values differ"
    elif isinstance(a, argparse.Namespace):
        assert type(b) is argparse.Namespace, f"{path}: {type(b).__name__} is not an argparse.Namespace"
        same(vars(a), vars(b), path)
    elif isinstance(a, dict):
        assert type(b) is dict, f"{path}: {type(b).__name__} is not a dict"
        assert sorted(map(repr, a)) == sorted(map(repr, b)), f"{path}: keys {list(b)} != {list(a)}"  # (JSON values sort keys)
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert type(b) is list, f"{path}: {type(b).__name__} is not a list"
        assert len(a) == len(b), f"{path}: length {len(b)} != {len(a)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}.{i}")
    else:
        assert type(a) is type(b), f"{path}: {type(b).__name__} {b!r} is not a {type(a).__name__}"
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), f"{path}: {b!r} != {a!r}"


def check_case(name, obj, inert):
    """ls lists obj's tensors; .pt -> .safetensors -> .pt gives expect_back(obj). Returns torch.load of the result."""
    d = os.path.join(WORK, name)
    os.makedirs(d)
    src, mid, back = (os.path.join(d, n) for n in ("in.pt", "mid.safetensors", "back.pt"))
    torch.save(obj, src)
    flag = ["--inert-objects"] if inert else []
    if inert:  # refused without the flag, naming a global and the flag
        r = ckpt("ls", src, rc=2)
        assert "pickle refers to global '" in r.stderr and "--inert-objects" in r.stderr, r.stderr
    listed = {tuple(e["keys"]): e for e in json.loads(ckpt("ls", "--json", *flag, src).stdout)["entries"]}
    want = tree_tensors(obj)
    assert set(listed) == set(want), f"{name}: ckpt lists {sorted(set(listed) ^ set(want))[:5]} differently"
    for k, t in want.items():
        assert listed[k]["dtype"] == CKPT_DTYPE[t.dtype] and listed[k]["shape"] == list(t.shape), f"{name}: {k}: {listed[k]}"
    ckpt("convert", *flag, src, mid)
    ckpt("diff", *flag, src, mid)
    conv = json.loads(ckpt("convert", "--json", mid, back).stdout)
    loaded = torch.load(back, weights_only=False)
    same(expect_back(obj), loaded, name)
    print(f"ok {name}: {len(want)} tensors; dropped on the way back to .pt: {conv['dropped']['objects'] or 'nothing'}")
    return loaded


# ---- training: the resumed model and optimizer take the same next step ----------------------------

def batch(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g)


def train_step(model, opt, seed, sched=None):
    model.train()
    x, y = batch(seed)
    torch.manual_seed(seed)  # the same dropout masks for the original and the resumed model
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    if sched:
        sched.step()


def same_state(a, b, what):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb), what
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{what}: {k} differs after the next step"
    print(f"  {what}: the resumed run's next step is bit-identical ({len(sa)} tensors)")


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)


def resumes_identically(make_model, original, opt, sched, state_of):
    """A fresh model + SGD + StepLR loaded from the round-tripped file's states (state_of gives
    model, optimizer, scheduler state dicts) takes the same next step as the originals."""
    model = make_model()
    # Copies: torch 2.x's Optimizer.load_state_dict keeps the very tensors it is given when their
    # dtype and device already fit, so a fresh optimizer given the original's live state would
    # share its momentum buffers and see the original's next step before taking its own.
    ms, os_, ss = copy.deepcopy(state_of)
    model.load_state_dict(ms)
    o = sgd(model)
    o.load_state_dict(os_)
    s = torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)
    s.load_state_dict(ss)
    train_step(original, opt, 99, sched)
    train_step(model, o, 99, s)
    same_state(original, model, "model")
    sa, sb = opt.state_dict(), o.state_dict()
    for i in sa["state"]:
        assert torch.equal(sa["state"][i]["momentum_buffer"], sb["state"][i]["momentum_buffer"]), "momentum differs"
    assert sa["param_groups"][0]["lr"] == sb["param_groups"][0]["lr"]


def trained(make_model, steps=2):
    torch.manual_seed(0)
    model = make_model()
    opt = sgd(model)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for s in range(steps):
        train_step(model, opt, s, sched)
    return model, opt, sched


# ---- the cases -------------------------------------------------------------------------------------

def resnet18():
    return torchvision.models.resnet18(num_classes=10)


def mobilenet():
    return torchvision.models.mobilenet_v3_small(num_classes=10)


def case_state_dicts():
    for name, make in (("resnet18", resnet18), ("mobilenet_v3_small", mobilenet)):
        model, opt, sched = trained(make)
        sd = model.state_dict()
        assert any(k.endswith("num_batches_tracked") and v.dim() == 0 for k, v in sd.items())
        back = check_case(f"state_dict_{name}", sd, inert=False)
        resumes_identically(make, model, opt, sched, (back, opt.state_dict(), sched.state_dict()))


def case_reference_script():
    """torchvision's references/classification/train.py checkpoint layout."""
    model, opt, sched = trained(resnet18)
    args = argparse.Namespace(data_path="/datasets/imagenet", model="resnet18", device="cpu", batch_size=32, epochs=90,
                              workers=16, opt="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, lr_scheduler="steplr",
                              lr_step_size=30, lr_gamma=0.1, output_dir="out", resume="", start_epoch=0, amp=False,
                              label_smoothing=0.0, mixup_alpha=0.0, auto_augment=None, val_resize_size=256,
                              train_crop_size=224, distributed=False)
    ck = {"model": model.state_dict(), "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(), "epoch": 2, "args": args}
    back = check_case("reference_script", ck, inert=True)
    assert type(back["args"]) is argparse.Namespace and back["args"].lr == 0.1  # Namespace written back as itself
    resumes_identically(resnet18, model, opt, sched, (back["model"], back["optimizer"], back["lr_scheduler"]))


def case_numpy():
    rng = np.random.default_rng(5)
    arrays = {}
    for code in ("?", "i1", "i2", "i4", "i8", "u1", "f2", "f4", "f8", "c8", "c16"):
        a = (rng.standard_normal((3, 4)) * 50).astype(code) if code != "?" else rng.integers(0, 2, (3, 4)).astype("?")
        arrays[np.dtype(code).name] = a
    arrays["f8_big_endian"] = np.arange(6.0).reshape(2, 3).astype(">f8")
    arrays["i4_big_endian_fortran"] = np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4))
    arrays["i2_fortran"] = np.asfortranarray(np.arange(6, dtype="i2").reshape(2, 3))
    arrays["scalar_0d"] = np.array(3.5, dtype="f4")
    arrays["empty"] = np.zeros((0, 3), dtype="f4")
    obj = {"best_acc1": np.float64(0.7123), "steps": np.int64(1234), "flag": np.bool_(True), "lr": np.float32(0.1),
           "u8": np.uint8(200), "big_u64": np.uint64(2**64 - 1), "half": np.float16(1.5), "c": np.complex128(1 - 2j),
           "name": np.str_("r\u00e9sum\u00e9"), "arrays": arrays, "w": torch.ones(2)}
    check_case("numpy", obj, inert=False)
    # uint16/32/64 arrays, np.random's state (its keys are uint32): read and converted to
    # safetensors (torch < 2.3 has no such tensors to load them back from a .pt)
    wide = {"u2": np.arange(6, dtype="<u2").reshape(2, 3), "u4": np.arange(4, dtype=">u4"), "u8": np.array([2**64 - 1], dtype="u8"),
            "rng": np.random.RandomState(0).get_state()}
    d = os.path.join(WORK, "numpy_wide")
    os.makedirs(d)
    torch.save(wide, os.path.join(d, "in.pt"))
    ckpt("convert", os.path.join(d, "in.pt"), os.path.join(d, "out.safetensors"))
    _, got, _, _ = safetensors_spec.read(os.path.join(d, "out.safetensors"))
    for k, a in (*wide.items(), ("rng.1", wide["rng"][1])):
        if k == "rng":
            continue
        dt, shape, v = got[k]
        assert dt == numpy_common.ckpt_dtype_of(a).upper() and shape == a.shape, (k, dt, shape)
        assert v.tobytes() == numpy_common.le_bytes(a), k
    print("ok numpy_wide: uint16/32/64 arrays read")


def case_lightning():
    """The layout of a Lightning .ckpt (with an AttributeDict of hyper-parameters)."""
    for mod in ("lightning_fabric", "lightning_fabric.utilities", "lightning_fabric.utilities.data"):
        sys.modules.setdefault(mod, types.ModuleType(mod))

    class AttributeDict(dict):
        pass
    AttributeDict.__module__, AttributeDict.__qualname__ = "lightning_fabric.utilities.data", "AttributeDict"
    sys.modules["lightning_fabric.utilities.data"].AttributeDict = AttributeDict

    model, opt, sched = trained(mobilenet)
    ck = {"epoch": 2, "global_step": 2, "pytorch-lightning_version": "2.1.3",
          "state_dict": {"model." + k: v for k, v in model.state_dict().items()},
          "loops": {"fit_loop": {"state_dict": {}, "epoch_loop.state_dict": {"_batches_that_stepped": 2},
                                 "epoch_progress": {"total": {"ready": 2, "started": 2, "processed": 2, "completed": 2}}}},
          "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0}":
                        {"monitor": "val_loss", "best_model_score": torch.tensor(0.25), "best_model_path": "/ckpts/e=1.ckpt",
                         "best_k_models": {"/ckpts/e=1.ckpt": torch.tensor(0.25)}, "kth_value": torch.tensor(float("inf"))}},
          "optimizer_states": [opt.state_dict()], "lr_schedulers": [sched.state_dict()],
          "hparams_name": "kwargs", "hyper_parameters": AttributeDict(lr=0.1, layers=(64, 64), dropout=None)}
    back = check_case("lightning", ck, inert=True)
    assert back["hyper_parameters"]["$class"] == "lightning_fabric.utilities.data.AttributeDict"
    resumes_identically(mobilenet, model, opt, sched,
                        ({k[6:]: v for k, v in back["state_dict"].items()}, back["optimizer_states"][0], back["lr_schedulers"][0]))


def case_whole_module():
    def net():
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(),
                                   torch.nn.Linear(4 * 30 * 30, 10))
    model, opt, sched = trained(net)
    back = check_case("whole_module", model, inert=True)
    # the tensors of the module's record are its state_dict: a fresh module resumes from them
    sd = {}
    for i, m in back["$state"]["_modules"].items():
        for kind in ("_parameters", "_buffers"):
            for k, v in m["$state"][kind].items():
                sd[f"{i}.{k}"] = v
    resumes_identically(net, model, opt, sched, (sd, opt.state_dict(), sched.state_dict()))


def case_hostile():
    d = os.path.join(WORK, "hostile")
    os.makedirs(d)

    class Evil:
        def __init__(self, marker):
            self.marker = marker

        def __reduce__(self):
            return (os.system, (f"touch {self.marker}",))
    live, quiet = os.path.join(d, "ran-live"), os.path.join(d, "ran")
    torch.save({"w": torch.ones(2), "x": Evil(live)}, os.path.join(d, "live.pt"))
    torch.load(os.path.join(d, "live.pt"), weights_only=False)
    assert os.path.exists(live), "the payload did not run under torch.load, so this test proves nothing"
    src, back = os.path.join(d, "evil.pt"), os.path.join(d, "back.pt")
    torch.save({"w": torch.ones(2), "x": Evil(quiet)}, src)
    r = ckpt("ls", src, rc=2)
    assert "'posix.system'" in r.stderr and "--inert-objects" in r.stderr, r.stderr
    assert not os.path.exists(quiet), "the payload ran"
    ls = json.loads(ckpt("ls", "--json", "--inert-objects", src).stdout)
    assert ls["objects"][0]["class"] == "posix.system", ls["objects"]
    assert not os.path.exists(quiet), "the payload ran"
    c = ckpt("convert", "--inert-objects", src, back)
    assert "x (posix.system)" in c.stderr, c.stderr
    out = torch.load(back, weights_only=False)  # what ckpt wrote runs nothing, even unrestricted
    assert out["x"] == {"$class": "posix.system", "$args": [f"touch {quiet}"]}, out["x"]
    assert not os.path.exists(quiet), "the payload ran"
    print("ok hostile: the payload runs under torch.load; ckpt refuses it, records it with --inert-objects, writes it back inert")


shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
case_state_dicts()
case_reference_script()
case_numpy()
case_lightning()
case_whole_module()
case_hostile()
print(f"torch objects interop ok (torch {torch.__version__}, torchvision {torchvision.__version__}, numpy {np.__version__})")
