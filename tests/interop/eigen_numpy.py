"""Eigen <-> NumPy through ckpt (run by ctest with /usr/bin/python3).

eigen_numpy_tool writes Eigen matrices of both storage orders, fixed and dynamic, vectors,
arrays and a Map to an .npz (and one to an .npy); np.load must see each logical matrix, with
its shape and dtype. Then NumPy writes C- and Fortran-ordered arrays that the tool loads into
Eigen objects of both storage orders. Neither side trusts the other's values: both compute
element k (its row-major index) from the same formula.

usage: eigen_numpy.py TOOL WORKDIR
"""
import os
import subprocess
import sys

import numpy as np


def expected(shape, dtype):
    """floats k/2 - 3, signed 3k - 7, unsigned 3k + 1, bool k % 3 == 0, complex k/2 - 3 + (k % 5)i."""
    k = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return k % 3 == 0
    if dt.kind == "c":
        return (k * 0.5 - 3 + 1j * (k % 5)).astype(dt)
    if dt.kind == "f":
        return (k * 0.5 - 3).astype(dt)
    if dt.kind == "i":
        return (3 * k - 7).astype(dt)
    return (3 * k + 1).astype(dt)


# name -> (shape NumPy must see, dtype); vectors are 1-D whichever their orientation in Eigen
WRITTEN = {
    "col_f64": ((3, 4), "<f8"), "row_f32": ((2, 5), "<f4"), "fixed_i32": ((3, 2), "<i4"),
    "vec_f64": ((6,), "<f8"), "rowvec_i64": ((4,), "<i8"), "arr_u8": ((2, 3), "u1"),
    "arr_row_i16": ((3, 3), "<i2"), "arr_u16": ((2, 2), "<u2"), "c128": ((2, 3), "<c16"),
    "c64": ((3, 2), "<c8"), "half": ((2, 2), "<f2"), "float16": ((2, 3), "<f2"),
    "bool": ((3, 3), "?"), "map_f64": ((3, 2), "<f8"),
}


def check(name, a, shape, dtype):
    want = expected(shape, dtype)
    if a.shape != want.shape or a.dtype != want.dtype or not np.array_equal(a, want):
        sys.exit("FAIL %s: got %s %s\n%r\nexpected %s %s\n%r" % (name, a.shape, a.dtype, a, want.shape, want.dtype, want))


def main():
    tool, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)

    # C++ (Eigen) -> NumPy
    subprocess.run([tool, "write", work], check=True)
    with np.load(os.path.join(work, "eigen.npz")) as z:
        # beside one member per tensor, ckpt's tree member (README: the .npz layout)
        if sorted(z.files) != sorted(list(WRITTEN) + ["__ckpt_tree__"]):
            sys.exit("FAIL: members %s, expected %s and __ckpt_tree__" % (sorted(z.files), sorted(WRITTEN)))
        for name, (shape, dtype) in WRITTEN.items():
            check(name, z[name], shape, dtype)
    check("col_f64.npy", np.load(os.path.join(work, "col_f64.npy")), (3, 4), "<f8")

    # NumPy -> C++ (Eigen), C and Fortran order
    arrays = {
        "c_f64": expected((3, 4), "<f8"),
        "f_f64": np.asfortranarray(expected((3, 4), "<f8")),
        "f_i32": np.asfortranarray(expected((2, 3), "<i4")),
        "vec_f32": expected((5,), "<f4"),
        "f_c64": np.asfortranarray(expected((2, 2), "<c8")),
        "c_bool": expected((2, 3), "?"),
        "f_u8": np.asfortranarray(expected((3, 2), "u1")),
    }
    for name, a in arrays.items():
        if name.startswith("f_") and (a.flags.c_contiguous or not a.flags.f_contiguous):
            sys.exit("FAIL: %s is not Fortran-ordered" % name)
    path = os.path.join(work, "py.npz")
    np.savez(path, **arrays)
    r = subprocess.run([tool, "read", path], capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    if r.returncode != 0 or "read ok 10 of 10" not in r.stdout:
        sys.exit("FAIL: the C++ side rejected NumPy's arrays (exit %d)\n%s" % (r.returncode, r.stderr))
    print("eigen numpy interop ok: %d Eigen objects read by NumPy, %d NumPy arrays read into Eigen" % (len(WRITTEN) + 1, len(arrays)))


if __name__ == "__main__":
    main()
