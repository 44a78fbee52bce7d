"""tools/python installs with pip offline, as the README says (Debian's python3-pip and
python3-setuptools, no network): `pip install --no-build-isolation --no-deps --no-index --target`
into a fresh folder; the installed module (not the source tree's) imports, has the project's
version in its metadata, and reads a file the library wrote as the library reads it.
The source folder is copied first so the build leaves nothing in the source tree.
Usage: see ckptfile_common.py."""
import json
import os
import shutil
import subprocess
import sys

from ckptfile_common import OUTDIR, PROJECT_VERSION, TOOLS_DIR, describe, write_fixtures

write_fixtures()
src, site = os.path.join(OUTDIR, "src"), os.path.join(OUTDIR, "site")
for d in (src, site):
    shutil.rmtree(d, ignore_errors=True)
shutil.copytree(TOOLS_DIR, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
# Hermetic: no pip configuration from the machine (PIP_* variables, pip.conf: extra links, caches).
env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")
subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index",
                "--root-user-action=ignore", "--target", site, src], check=True, env=env, cwd=OUTDIR)

path = os.path.join(OUTDIR, "all.ckpt")
probe = r"""
import importlib.metadata, json, sys
import ckptfile
t = ckptfile.load(sys.argv[1])
print(json.dumps({"file": ckptfile.__file__, "version": importlib.metadata.version("ckptfile"),
                  "weight": t["model"]["0.weight"].tobytes().hex(), "epoch": t["epoch"],
                  "containers": [t["optimizer"]["state"].container, t["model"]["encoder"]["layers"].container]}))
"""
out = subprocess.run([sys.executable, "-s", "-c", probe, path], check=True, stdout=subprocess.PIPE,
                     env=dict(env, PYTHONPATH=site), cwd=OUTDIR, universal_newlines=True).stdout
got = json.loads(out.strip().splitlines()[-1])
want = {k: v for k, v in describe(path)["dict"]}
assert os.path.dirname(got["file"]) == site, got["file"]
assert got["version"] == PROJECT_VERSION, got["version"]
weight = dict(want["model"]["dict"])["0.weight"]["tensor"]["hex"]
layers = dict(want["model"]["dict"])["encoder"]["dict"][0][1]["container"]
assert got["weight"] == weight and got["epoch"] == want["epoch"]["value"], got
assert got["containers"] == [dict(want["optimizer"]["dict"])["state"]["container"], layers], got
print("installed", got["file"], got["version"])
print("ckptfile ok")
