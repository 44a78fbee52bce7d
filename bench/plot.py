"""Plot the benchmark results: save and load throughput (GB/s, median of the runs, with the
min..max range as error bars) per backend beside raw write(2)/read(2) and torch.save/torch.load.

    /usr/bin/python3 bench/plot.py --cpp-json bench-results.json --torch-json bench-torch.json \
        --out docs/bench.png

Needs Debian's python3-matplotlib.
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


def bars(seconds, state_bytes, names):
    """(labels, medians, lower errors, upper errors) in GB/s for the names present."""
    labels, med, lo, hi = [], [], [], []
    for label, key in names:
        if key not in seconds:
            continue
        s = seconds[key]
        gbps = state_bytes / 1e9 / s["median"]
        labels.append(label)
        med.append(gbps)
        lo.append(gbps - state_bytes / 1e9 / s["max"])  # slowest run
        hi.append(state_bytes / 1e9 / s["min"] - gbps)  # fastest run
    return labels, med, lo, hi


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpp-json", required=True, help="bench_io --json output")
    ap.add_argument("--torch-json", help="compare_torch.py --json output")
    ap.add_argument("--out", default="bench.png")
    a = ap.parse_args()
    cpp = json.load(open(a.cpp_json))
    seconds = dict(cpp["seconds"])
    if a.torch_json:
        torch = json.load(open(a.torch_json))
        seconds.update(torch["seconds"])
    state = cpp["state_bytes"]
    backends = [f for f in ("native", "safetensors", "npz", "pt") if "save_" + f in seconds]
    save_names = [("raw write\n+fsync", "raw_write"), ("raw write", "raw_write_nosync")]
    for f in backends:
        save_names += [(f + "\n+fsync", "save_" + f), (f, "save_nosync_" + f)]
    save_names += [("torch.save", "torch_save"), ("np.savez", "np_savez")]
    load_names = [("raw read", "raw_read")] + [(f, "load_" + f) for f in backends]
    load_names += [("native\nno CRC", "load_noverify_native"), ("torch.load", "torch_load"), ("np.load", "np_load")]

    fig, axes = plt.subplots(2, 1, figsize=(11, 8))
    for ax, title, names in ((axes[0], "save", save_names), (axes[1], "eager load", load_names)):
        labels, med, lo, hi = bars(seconds, state, names)
        colors = ["#777777" if l.startswith("raw") else "#d62728" if l.startswith(("torch", "np.")) else "#1f77b4" for l in labels]
        ax.bar(range(len(labels)), med, yerr=[lo, hi], color=colors, capsize=3)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_ylabel("GB/s (median, min..max)")
        ax.set_title("%s of %.2f GiB of f32 in 16 tensors" % (title, state / (1 << 30)))
        for i, v in enumerate(med):
            ax.text(i, v, "%.2f" % v, ha="center", va="bottom", fontsize=7)
    m = cpp.get("machine", {})
    fig.suptitle("ckpt bench_io, %d runs — %s, %s cores, %s, %s" % (cpp.get("runs", 0), m.get("cpu", "?"), m.get("cores", "?"),
                                                                  m.get("memory", "?"), m.get("date", "?")), fontsize=9)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
