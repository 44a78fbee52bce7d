"""torch.save of a state living on the GPU, timed as bench/torch_cuda_block times ckpt (issue 17):
the same tensors (256 MiB f32 each, --size in all), a fresh file name every round, median of
--runs rounds after one warm-up; with and without an fsync of the file. One JSON line per figure.
    python3 torch_cuda_save.py --dir DIR [--size 4G] [--runs 5]
"""
import argparse
import json
import os
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--size", default="4G")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    size = int(a.size[:-1]) * {"G": 1 << 30, "M": 1 << 20}[a.size[-1]] if a.size[-1] in "GM" else int(a.size)
    per = 64 << 20
    count = max(1, size // (per * 4))
    state = {f"layer{i}.weight": torch.randn(per, device="cuda") for i in range(count)}
    torch.cuda.synchronize()
    os.makedirs(a.dir, exist_ok=True)
    for fsync in (False, True):
        times = []
        for r in range(a.runs + 1):
            path = os.path.join(a.dir, f"state-{int(fsync)}-{r}.pt")
            t0 = time.perf_counter()
            with open(path, "wb") as f:
                torch.save(state, f)
                if fsync:
                    f.flush()
                    os.fsync(f.fileno())
            dt = time.perf_counter() - t0
            os.remove(path)
            if r:
                times.append(dt)
        print(json.dumps({"figure": "torch.save" + (" + fsync" if fsync else ""), "median_s": statistics.median(times),
                          "min_s": min(times), "max_s": max(times), "runs": len(times), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
