"""Run C++ to write .ckpt files, then read them with the pure-Python reader that
docs/FORMAT.md contains (extracted at configure time) and compare every value."""
import json
import math
import subprocess
import sys

writer, reader_path, outdir = sys.argv[1:4]
subprocess.run([writer, outdir], check=True)
ns = {}
exec(compile(open(reader_path).read(), reader_path, "exec"), ns)
expected = json.load(open(outdir + "/expected.json"))

for name in ("raw.ckpt", "zlib.ckpt"):
    tensors, tree = ns["read_ckpt"](outdir + "/" + name)
    seen = set()

    def walk(node, path):
        if "tensor" in node:
            key = ".".join(path)
            dtype, shape, values = tensors[node["tensor"]]
            exp = expected[key]
            assert dtype == exp["dtype"], (key, dtype, exp["dtype"])
            assert list(shape) == exp["shape"], (key, shape, exp["shape"])
            assert len(values) == len(exp["values"]), key
            for a, b in zip(values, exp["values"]):
                assert a == b or (isinstance(a, float) and math.isclose(a, b, rel_tol=0, abs_tol=0)), (key, a, b)
            seen.add(key)
        elif "value" in node:
            key = ".".join(path)
            assert node["value"] == expected[key]["value"], key
            seen.add(key)
        else:
            for k, child in node["dict"]:
                walk(child, path + [k])

    walk(tree, [])
    missing = set(expected) - seen
    if name == "raw.ckpt":
        missing.discard("zeros")
    assert not missing, missing
    print(name, "ok:", len(seen), "leaves")
print("format reader ok")
