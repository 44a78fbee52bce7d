#!/usr/bin/python3
"""libtorch <-> PyTorch resumes through include/ckpt/integrations/torch.hpp (run by ctest with
/usr/bin/python3, label interop).

    torch_integration.py TOOL WORKDIR

For each optimizer configuration (Adam, AdamW with and without amsgrad; SGD plain, momentum,
nesterov; RMSprop plain, centered with momentum; Adagrad), with the convnet of TOOL
(torch_integration_tool.cpp: Conv2d, BatchNorm2d, Linear) on the same data:
  C++ -> Python: C++ trains K steps and writes run.pt through ckpt::Checkpoint; Python loads
    model and optimizer with load_state_dict (strict) and takes N steps; C++ resumes from the
    same file and takes the same N steps; model and optimizer state must agree.
  Python -> C++: Python trains K steps and torch.save's the state dict; C++ resumes from it
    and takes N steps; Python takes the same N steps; same comparison.
Then: safetensors (model only) both ways, and a Python state dict with maximize=True, which
the C++ side must refuse naming the key.

Both sides run one thread. Comparison: bit-exact on torch 1.x, where the same libtorch .so runs
the same kernels in the same order on both sides (measured here, Debian 12's torch 1.13); on
torch 2.x within 1e-6 relative (max-norm per tensor), because Python 2.x's optimizers compute
differently from libtorch's C++ ones (e.g. Adam's exp_avg by lerp_ instead of mul_ + add_).
"""
import os
import shutil
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_spec  # noqa: E402  (stdlib + numpy safetensors reader/writer)

TOOL, WORK = sys.argv[1:3]
K, N = 3, 3
EXACT = torch.__version__.split(".")[0] == "1"
torch.set_num_threads(1)
O = torch.optim
CONFIGS = {
    "adam": lambda p: O.Adam(p, lr=1e-2, foreach=False),
    "adam-amsgrad": lambda p: O.Adam(p, lr=1e-2, amsgrad=True, weight_decay=1e-3, foreach=False),
    "adamw": lambda p: O.AdamW(p, lr=1e-2, foreach=False),
    "adamw-amsgrad": lambda p: O.AdamW(p, lr=1e-2, amsgrad=True, weight_decay=0.05, foreach=False),
    "sgd": lambda p: O.SGD(p, lr=0.1, foreach=False),
    "sgd-momentum": lambda p: O.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-3, foreach=False),
    "sgd-nesterov": lambda p: O.SGD(p, lr=0.1, momentum=0.9, nesterov=True, foreach=False),
    "rmsprop": lambda p: O.RMSprop(p, lr=1e-2, foreach=False),
    "rmsprop-centered": lambda p: O.RMSprop(p, lr=1e-2, momentum=0.5, centered=True, weight_decay=1e-3, foreach=False),
    "adagrad": lambda p: O.Adagrad(p, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, foreach=False),
}
DEFAULTS = {  # what a resume builds: everything else comes from the loaded param_groups
    "adam": lambda p: O.Adam(p, lr=1.0), "adamw": lambda p: O.AdamW(p, lr=1.0), "sgd": lambda p: O.SGD(p, lr=1.0),
    "rmsprop": lambda p: O.RMSprop(p, lr=1.0), "adagrad": lambda p: O.Adagrad(p, lr=1.0),
}


class Net(torch.nn.Module):  # torch_integration_tool.cpp's NetImpl
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)  # see torch_integration_tool.cpp
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def tool(*args, fail=False):
    r = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True)
    if (r.returncode != 0) != fail:
        sys.exit(f"FAILED (exit {r.returncode}): {TOOL} {' '.join(map(str, args))}\n{r.stdout}{r.stderr}")
    return r.stdout + r.stderr


def train(net, opt, data, start, steps):
    net.train()
    for i in range(start, start + steps):
        lo = (i % 6) * 8
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(data["x"][lo:lo + 8]), data["y"][lo:lo + 8]).backward()
        opt.step()


def flat_state(model_sd, opt_sd):
    """{name: tensor or number} of a model and an optimizer state dict, for comparison."""
    out = {f"model.{k}": v for k, v in model_sd.items()}
    for i, entry in opt_sd["state"].items():
        for k, v in entry.items():
            if k == "step":
                v = float(v)  # a float32 tensor (torch 2.x, and ours) or an int (torch 1.13's RMSprop)
            if v is not None:
                out[f"optimizer.state.{i}.{k}"] = v
    for g, group in enumerate(opt_sd["param_groups"]):
        for k in ("lr", "betas", "eps", "weight_decay", "amsgrad", "momentum", "dampening", "nesterov", "alpha",
                  "centered", "lr_decay", "initial_accumulator_value"):
            if k in group:
                out[f"optimizer.param_groups.{g}.{k}"] = list(group[k]) if k == "betas" else group[k]
    return out


def compare(what, got, want):
    """got and want are flat states; returns the worst relative difference (0.0: bit-exact)."""
    assert sorted(got) == sorted(want), f"{what}: keys differ: {sorted(set(got) ^ set(want))}"
    worst = 0.0
    for k, w in want.items():
        g = got[k]
        if not isinstance(w, torch.Tensor):
            assert g == w, f"{what}: {k}: {g} != {w}"
            continue
        assert g.dtype == w.dtype and g.shape == w.shape, f"{what}: {k}: {g.dtype}{list(g.shape)} vs {w.dtype}{list(w.shape)}"
        if torch.equal(g, w):
            continue
        scale = w.double().abs().max().item()
        diff = (g.double() - w.double()).abs().max().item()
        rel = diff / scale if scale > 0 else diff
        worst = max(worst, rel)
        assert not EXACT, f"{what}: {k} is not bit-exact (max relative difference {rel:.3g})"
        assert rel <= 1e-6, f"{what}: {k} differs by {rel:.3g} relative (> 1e-6)"
    return worst


def load_into_python(path, cfg, seed):
    d = torch.load(path)
    torch.manual_seed(seed)
    net = Net()
    net.load_state_dict(d["model_state_dict"])  # strict=True
    opt = DEFAULTS[cfg.split("-")[0]](net.parameters())
    opt.load_state_dict(d["optimizer_state_dict"])
    return d, net, opt


def resume_in_cpp(what, cfg, data_path, src, net, opt):
    """C++ resumes from src and takes N steps; its state must equal Python's net and opt."""
    out = src.replace(".pt", "-resumed-in-cpp.pt")
    tool("resume", cfg, data_path, src, N, out)
    r = torch.load(out)
    assert r["epoch"] == K + N
    return compare(what, flat_state(r["model_state_dict"], r["optimizer_state_dict"]), flat_state(net.state_dict(), opt.state_dict()))


def cpp_to_python(cfg, data, data_path):
    a = os.path.join(WORK, f"{cfg}-cpp-{K}.pt")
    tool("train", cfg, data_path, K, a)
    d, net, opt = load_into_python(a, cfg, seed=3)
    assert d["epoch"] == K
    assert net.bn.num_batches_tracked.item() == K, "num_batches_tracked was not written (Python filled it)"
    compare(f"{cfg}: Python's state after loading C++'s", flat_state(net.state_dict(), opt.state_dict()),
            flat_state(d["model_state_dict"], d["optimizer_state_dict"]))
    if not EXACT:  # torch 1.13's weights_only loader rejects every float (no BINFLOAT); 2.x takes them
        torch.load(a, weights_only=True)
    train(net, opt, data, K, N)
    return resume_in_cpp(f"{cfg}: C++ -> Python vs C++ -> C++", cfg, data_path, a, net, opt)


def python_to_cpp(cfg, data, data_path):
    torch.manual_seed(4)
    net = Net()
    opt = CONFIGS[cfg](net.parameters())
    train(net, opt, data, 0, K)
    p = os.path.join(WORK, f"{cfg}-py-{K}.pt")
    torch.save({"model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(), "epoch": K}, p)
    train(net, opt, data, K, N)
    return resume_in_cpp(f"{cfg}: Python -> C++ vs Python -> Python", cfg, data_path, p, net, opt)


def safetensors_both_ways():
    cpp = os.path.join(WORK, "adam-cpp-3.pt")
    st = os.path.join(WORK, "model.safetensors")
    tool("model", cpp, st)  # C++ writes the model alone
    _, tensors, _, _ = safetensors_spec.read(st)
    sd = {k: torch.from_numpy(a.copy()) for k, (dt, shape, a) in tensors.items()}
    net = Net()
    net.load_state_dict(sd)  # strict: exactly the module's keys
    compare("safetensors C++ -> Python", {f"model.{k}": v for k, v in net.state_dict().items()},
            {f"model.{k}": v for k, v in torch.load(cpp)["model_state_dict"].items()})
    py = os.path.join(WORK, "python.safetensors")
    names = {torch.float32: "F32", torch.int64: "I64"}
    safetensors_spec.write(py, [(k, names[v.dtype], v.numpy()) for k, v in net.state_dict().items()])
    back = os.path.join(WORK, "python-safetensors.pt")
    tool("model", py, back)  # C++ reads a Python-written safetensors file into its model
    compare("safetensors Python -> C++", {f"model.{k}": v for k, v in torch.load(back).items()},
            {f"model.{k}": v for k, v in net.state_dict().items()})


def maximize_refused(data, data_path):
    torch.manual_seed(5)
    net = Net()
    opt = O.Adam(net.parameters(), lr=1e-2, maximize=True)
    train(net, opt, data, 0, 1)
    p = os.path.join(WORK, "maximize.pt")
    torch.save({"model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(), "epoch": 1}, p)
    out = tool("resume", "adam", data_path, p, 1, os.path.join(WORK, "never.pt"), fail=True)
    assert "optimizer_state_dict.param_groups.0.maximize" in out and "expected false, got true" in out, out
    assert not os.path.exists(os.path.join(WORK, "never.pt"))


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    data_path = os.path.join(WORK, "data.pt")
    tool("data", data_path)
    data = torch.load(data_path)
    print(f"torch {torch.__version__}, one thread; K={K} steps on one side, then N={N} on both; "
          f"{'bit-exact' if EXACT else 'within 1e-6 relative'} comparison")
    for cfg in CONFIGS:
        a = cpp_to_python(cfg, data, data_path)
        b = python_to_cpp(cfg, data, data_path)
        print(f"{cfg:17s} C++->Python: {'bit-exact' if a == 0 else f'{a:.3g} rel'}   "
              f"Python->C++: {'bit-exact' if b == 0 else f'{b:.3g} rel'}")
    safetensors_both_ways()
    print("safetensors model: C++ -> Python and Python -> C++ exact")
    maximize_refused(data, data_path)
    print("maximize=True refused by the C++ side, naming the key")
    print("torch integration ok")


main()
