"""Benchmark torch.save / torch.load and np.savez / np.load on the same state bench_io uses
(16 float32 tensors totalling --size), medians of --runs runs, and print the ratios against
ckpt's figures from bench_io's JSON (--cpp-json).

    /usr/bin/python3 bench/compare_torch.py --size 1G --runs 5 --cpp-json bench-results.json
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time


def parse_size(s):
    mul = {"G": 1 << 30, "M": 1 << 20, "K": 1 << 10}.get(s[-1], 1)
    return int(s[:-1] if mul != 1 else s) * mul


def timed(fn, runs):
    """Median, min and max of `runs` calls after one untimed warm-up call (as bench_io does:
    the first touch of fresh memory is slow on virtual machines); dirty pages are written back
    between calls, untimed, so one call does not pay for the previous one's writeback."""
    out = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        fn()
        if i:
            out.append(time.perf_counter() - t0)
        os.sync()
    return {"median": statistics.median(out), "min": min(out), "max": max(out)}


TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647"


def main():
    # Keep freed memory in the process, as bench_io does with mallopt() (see the comment
    # there): on virtual machines that return freed memory to the host, whatever follows a
    # large free() otherwise pays for it. glibc reads the tunables at start-up: re-exec.
    if os.environ.get("GLIBC_TUNABLES") != TUNABLES:
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, GLIBC_TUNABLES=TUNABLES))
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1G")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cpp-json")
    ap.add_argument("--json", default="bench-torch.json")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.size, a.runs = "32M", 1
    import numpy as np
    import torch

    size = parse_size(a.size)
    per = size // 4 // 16
    g = torch.Generator().manual_seed(1)
    state = {"layers.%d.weight" % i: torch.randn(per, generator=g) for i in range(16)}
    arrays = {k: v.numpy() for k, v in state.items()}
    res = {"state_bytes": per * 4 * 16, "runs": a.runs, "seconds": {}}
    with tempfile.TemporaryDirectory(prefix="ckpt-bench-torch-") as d:
        pt, npz = os.path.join(d, "s.pt"), os.path.join(d, "s.npz")
        res["seconds"]["torch_save"] = timed(lambda: torch.save(state, pt), a.runs)
        res["seconds"]["torch_load"] = timed(lambda: torch.load(pt), a.runs)
        # The "one tensor" a user of torch gets: torch.load of the whole file, then index.
        res["seconds"]["torch_load_one"] = timed(lambda: torch.load(pt)["layers.0.weight"].sum(), a.runs)
        res["seconds"]["np_savez"] = timed(lambda: np.savez(npz, **arrays), a.runs)

        def np_load_all():
            with np.load(npz) as z:
                for k in z.files:
                    z[k]
        res["seconds"]["np_load"] = timed(np_load_all, a.runs)
    print("%-16s %10s %10s %10s %8s" % ("operation", "median s", "min s", "max s", "GB/s"))
    for k, v in res["seconds"].items():
        print("%-16s %10.4f %10.4f %10.4f %8.2f" % (k, v["median"], v["min"], v["max"], res["state_bytes"] / 1e9 / v["median"]))
    if a.cpp_json:
        cpp = json.load(open(a.cpp_json))["seconds"]
        ratios = {}
        def ratio(ours, theirs, label):
            if ours in cpp:
                r = res["seconds"][theirs]["median"] / cpp[ours]["median"]
                ratios[label] = r
                print("  %-44s %.3f" % (label, r))
        print("ratios (ckpt throughput / theirs; > 1 means ckpt is faster):")
        ratio("save_native", "torch_save", "native save (fsync) vs torch.save")
        ratio("save_nosync_native", "torch_save", "native save (no fsync) vs torch.save")
        ratio("load_native", "torch_load", "native eager load vs torch.load")
        ratio("save_native", "np_savez", "native save (fsync) vs np.savez")
        ratio("load_native", "np_load", "native eager load vs np.load")
        if "mmap_one_native" in cpp:
            r = cpp["mmap_one_native"]["median"] / res["seconds"]["torch_load"]["median"]
            ratios["mmap_one_vs_full_torch_load_time"] = r
            print("  %-44s %.5f (target <= 0.01)" % ("mmap open + one tensor / full torch.load time", r))
        res["ratios"] = ratios
    json.dump(res, open(a.json, "w"), indent=2)
    print("wrote", a.json)


if __name__ == "__main__":
    main()
