#!/usr/bin/env bash
# ckpt's CUDA checks (issue 17) on a machine with a GPU and pip's PyTorch, whose wheel ships
# libtorch with CUDA: builds tests/integrations/test_torch_cuda.cpp and bench/torch_cuda_block.cpp
# against it with plain g++ (no CMake packages there), runs the tests, then times an async
# CheckpointManager::save of a 4 GiB GPU model against torch.save of the same state.
#   bench/cuda_device.sh DEPS OUT
# DEPS holds what that machine lacks, copied from a Debian machine: nlohmann/, catch2/catch.hpp
# (Catch2 v2's single header), zlib.h, zconf.h and lib/libz.so.1. OUT receives the logs and a
# summary with the ratio. Exit status: the tests' (then the bench's). CKPT_CUDA_BENCH=0: tests only.
set -euo pipefail
deps=$(realpath "$1")
out=$(realpath "$2")
py=${PYTHON:-python3}
torch_dir=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
abi=$("$py" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
cxx=${CXX:-g++}
"$cxx" --version | head -n 1
"$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
flags=(-std=c++20 -O2 -g -D_GLIBCXX_USE_CXX11_ABI="$abi" -Wall -Wextra -Iinclude -Itests/support -I"$deps"
       -isystem "$torch_dir/include" -isystem "$torch_dir/include/torch/csrc/api/include")
# libstdc++ first: pip's libtorch.so exports its own copy of std::filesystem (remove_all among
# them), which would otherwise interpose on the program's and jumps to address 0 when it recurses
# into a directory.
libs=(-Wl,--no-as-needed -lstdc++ -L"$torch_dir/lib" -Wl,-rpath,"$torch_dir/lib" -ltorch_cuda -lc10_cuda -Wl,--as-needed
      -ltorch -ltorch_cpu -lc10 -L"$deps/lib" -l:libz.so.1 -pthread)
build=/tmp/ckpt-cuda-build
mkdir -p "$build"
"$cxx" "${flags[@]}" -DCKPT_CATCH2_MAJOR=2 -c tests/catch_main.cpp -o "$build/catch_main.o" &
"$cxx" "${flags[@]}" -DCKPT_CATCH2_MAJOR=2 -c tests/integrations/test_torch_cuda.cpp -o "$build/test_torch_cuda.o" 2> "$out/build_test.log" &
"$cxx" "${flags[@]}" bench/torch_cuda_block.cpp -o "$build/torch_cuda_block" "${libs[@]}" 2> "$out/build_bench.log" &
for job in $(jobs -p); do wait "$job"; done
"$cxx" "$build/catch_main.o" "$build/test_torch_cuda.o" -o "$build/test_torch_cuda" "${libs[@]}"
echo "== tests"
set +e
"$build/test_torch_cuda" --durations yes > "$out/test_torch_cuda.txt" 2>&1
tests_rc=$?
set -e
cat "$out/test_torch_cuda.txt"
if [[ "${CKPT_CUDA_BENCH:-1}" == 0 ]]; then exit "$tests_rc"; fi
echo "== bench"
"$build/torch_cuda_block" --dir /tmp/ckpt-cuda-bench --size 4G --runs 5 | tee "$out/torch_cuda_block.jsonl"
"$py" bench/torch_cuda_save.py --dir /tmp/ckpt-cuda-bench/torch --size 4G --runs 5 | tee "$out/torch_cuda_save.jsonl"
"$py" - "$out" <<'PY' | tee "$out/summary.txt"
import json, sys
rows = {}
for name in ("torch_cuda_block.jsonl", "torch_cuda_save.jsonl"):
    for line in open(f"{sys.argv[1]}/{name}"):
        j = json.loads(line)
        if "figure" in j:
            rows[j["figure"]] = j["median_s"]
for k, v in rows.items():
    print(f"{k}: {v:.4f} s (median)")
b, t = rows["ckpt async save, blocking part"], rows["torch.save"]
print(f"async blocking / torch.save = {b / t:.4f} (goal <= 0.02, i.e. 1/50); torch.save / blocking = {t / b:.1f}x")
PY
exit "$tests_rc"
