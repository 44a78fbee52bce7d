#!/usr/bin/python3
"""Cross-framework resume: C++ -> PyTorch -> C++ (run by ctest with /usr/bin/python3, label interop).

    torch_cross_resume.py TRAIN_LINEAR CROSS_TOOL WORKDIR

1. train_linear trains N epochs in C++ alone (.pt checkpoints): the reference losses.
2. train_linear trains K epochs and stops; torch.load's its end-of-epoch-K .pt into torch.nn.Linear and
   torch.optim.Adam (load_state_dict on both) — checked bit for bit against the state the C++
   trainer restores from the same file (CROSS_TOOL state).
3. One Adam step from that identical state, in torch and in C++ (CROSS_TOOL step): equal within
   1e-6 relative (max-norm).
4. torch trains M more epochs over the same samples in the same order (CROSS_TOOL plan gives the
   data, each epoch's order from the trainer's RNG, and the RNG state after them) and
   torch.save's the checkpoint in the trainer's layout; C++ restores it bit for bit
   (CROSS_TOOL state) and train_linear resumes from it and finishes.
5. The final loss of the chain is within 1e-5 of the all-C++ run's.
"""
import os
import re
import shutil
import subprocess
import sys

import torch

TRAIN, TOOL, WORK = sys.argv[1:4]
SEED, N, K, M = 42, 10, 3, 4  # epochs: C++ 1..K, torch K+1..K+M, C++ K+M+1..N


def run(*args):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(args)}\n{r.stdout}{r.stderr}")
    return r.stdout


def train(ckpt_dir, *extra):
    out = run(TRAIN, "--ckpt-dir", ckpt_dir, "--epochs", str(N), "--seed", str(SEED), "--format", "pt", "--layout", "torch", *extra)
    return out, {int(e): float(l) for e, l in re.findall(r"^epoch (\d+) loss (\S+)", out, re.M)}


def bits(t):
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def same_bits(a, b, what):
    assert a.dtype == b.dtype and a.shape == b.shape and bits(a) == bits(b), f"{what}: not bit-identical"


def model_key(ck):  # the trainer's layout ("model"/"optimizer") or the seed's ("model_state_dict"/...)
    return ("model", "optimizer") if "model" in ck else ("model_state_dict", "optimizer_state_dict")


def torch_state(path):
    ck = torch.load(path)
    mk, ok = model_key(ck)
    w = ck[mk]["weight"]
    lin = torch.nn.Linear(w.shape[1], w.shape[0])
    lin.load_state_dict(ck[mk])
    opt = torch.optim.Adam(lin.parameters())
    opt.load_state_dict(ck[ok])
    return ck, lin, opt


def check_equal(lin, opt, ref_path, what):
    """torch's model and Adam state equal, bit for bit, what the C++ trainer holds (ref_path)."""
    ref = torch.load(ref_path)
    same_bits(lin.weight, ref["model"]["weight"], f"{what}: weight")
    same_bits(lin.bias, ref["model"]["bias"], f"{what}: bias")
    st = opt.state_dict()["state"]
    assert sorted(st) == sorted(ref["optimizer"]["state"]), f"{what}: Adam state keys differ"
    for i, s in st.items():
        for k in ("step", "exp_avg", "exp_avg_sq"):
            same_bits(s[k], ref["optimizer"]["state"][i][k], f"{what}: Adam state {i}.{k}")
    g, rg = opt.state_dict()["param_groups"][0], ref["optimizer"]["param_groups"][0]
    for k in ("lr", "eps", "weight_decay", "amsgrad"):
        assert g[k] == rg[k], f"{what}: param_group {k}: {g[k]} != {rg[k]}"
    assert list(g["betas"]) == list(rg["betas"])


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    alone, chain = os.path.join(WORK, "cpp-only"), os.path.join(WORK, "chain")

    _, ref = train(alone)
    assert sorted(ref) == list(range(1, N + 1)), ref

    out, first = train(chain, "--stop-after", str(K))
    start = re.search(rf"^epoch {K} loss \S+ saved (\S+)$", out, re.M).group(1)  # step-<optimizer steps>.pt
    ck, lin, opt = torch_state(start)
    run(TOOL, "state", start, str(SEED), os.path.join(WORK, "cpp-state.pt"))
    check_equal(lin, opt, os.path.join(WORK, "cpp-state.pt"), "after torch.load")
    print(f"epoch {K}: torch.nn.Linear and torch.optim.Adam loaded the C++ state bit for bit")

    plan_path = os.path.join(WORK, "plan.pt")
    run(TOOL, "plan", start, str(SEED), str(M), plan_path)
    plan = torch.load(plan_path)
    x, y = plan["x"], plan["y"]

    # one Adam step from identical state: torch vs C++
    run(TOOL, "step", start, str(SEED), os.path.join(WORK, "cpp-step.pt"))
    cstep = torch.load(os.path.join(WORK, "cpp-step.pt"))
    _, l1, o1 = torch_state(start)
    o1.zero_grad()
    ((l1(x[:64]) - y[:64]) ** 2).mean().backward()
    o1.step()
    worst = 0.0
    pairs = [(l1.weight, cstep["model"]["weight"]), (l1.bias, cstep["model"]["bias"])]
    for i, p in enumerate(l1.parameters()):
        for k in ("exp_avg", "exp_avg_sq"):
            pairs.append((o1.state[p][k], cstep["optimizer"]["state"][i][k]))
    for a, b in pairs:
        rel = ((a.detach().double() - b.double()).abs().max() / b.double().abs().max()).item()
        worst = max(worst, rel)
    assert worst <= 1e-6, f"one Adam step differs by {worst:.3g} (relative, max-norm)"
    print(f"one Adam step from identical state: torch vs C++ differ by {worst:.3g} relative (max-norm)")

    # torch trains epochs K+1..K+M over the same samples in the same order
    losses = {}
    batch = int(plan["batch"])
    for e in range(M):
        order = plan["orders"][e]
        total, batches = 0.0, 0
        for lo in range(0, len(order), batch):
            idx = order[lo:lo + batch]
            opt.zero_grad()
            loss = ((lin(x[idx]) - y[idx]) ** 2).mean()
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
        losses[K + e + 1] = total / batches
    mk, ok = model_key(ck)
    ck[mk] = lin.state_dict()
    ck[ok] = opt.state_dict()
    ck["epoch"] = K + M
    ck["loss"] = losses[K + M]
    if "rng" in ck:
        ck["rng"] = plan["rng_after"]
    if "order" in ck:
        last = plan["orders"][M - 1]
        ck["order"] = last.clone() if isinstance(ck["order"], torch.Tensor) else last.tolist()
    if "next_batch" in ck:
        ck["next_batch"] = 0
    if "running_loss" in ck:
        ck["running_loss"] = 0.0
    steps = (K + M) * ((len(plan["orders"][0]) + batch - 1) // batch)  # train_linear numbers checkpoints by optimizer step
    handoff = os.path.join(chain, f"step-{steps}.pt")
    torch.save(ck, handoff)
    run(TOOL, "state", handoff, str(SEED), os.path.join(WORK, "cpp-state-2.pt"))
    check_equal(lin, opt, os.path.join(WORK, "cpp-state-2.pt"), "after torch.save")
    print(f"epoch {K + M}: the C++ trainer restored torch's checkpoint bit for bit")

    out, last = train(chain)
    assert f"resumed from {handoff} at step {steps} (epoch {K + M}, batch 0)" in out, out
    chain_losses = {**first, **losses, **last}
    assert sorted(chain_losses) == list(range(1, N + 1)), chain_losses
    print("epoch  C++ only        C++ -> torch -> C++")
    for e in range(1, N + 1):
        who = "C++" if e <= K or e > K + M else "torch"
        print(f"{e:5d}  {ref[e]:.9f}  {chain_losses[e]:.9f} ({who})")
    diff = abs(chain_losses[N] - ref[N])
    assert diff <= 1e-5, f"final loss differs by {diff:.3g}"
    print(f"final loss: chain {chain_losses[N]:.9f}, C++ only {ref[N]:.9f}, difference {diff:.3g}")
    print("torch cross resume ok")


main()
