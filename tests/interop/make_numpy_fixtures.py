"""Writes tests/data/npy/: small files written by NumPy itself (np.save, np.savez,
np.savez_compressed, np.lib.format.write_array), read by tests/formats/test_npy.cpp so that
the C++ tests check real NumPy output even where NumPy is not installed. The values are simple
formulas the C++ test recomputes. Committed output was produced by NumPy 1.24.2 (Debian 12).

    /usr/bin/python3 tests/interop/make_numpy_fixtures.py tests/data/npy"""
import os
import sys

import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def p(name):
    return os.path.join(out, name)


np.save(p("f4_c.npy"), np.arange(6, dtype="<f4").reshape(2, 3) * 0.5)
np.save(p("f8_fortran.npy"), np.asfortranarray(np.arange(24, dtype="<f8").reshape(2, 3, 4)))
np.save(p("i4_big.npy"), (np.arange(5) * -3).astype(">i4"))
np.save(p("c8_big.npy"), (np.arange(3) + 1j * np.arange(3)).astype(">c8"))
np.save(p("u2_big_fortran.npy"), np.asfortranarray(np.arange(12).reshape(3, 4).astype(">u2")))
np.save(p("bool.npy"), np.array([True, False, True]))
np.save(p("scalar.npy"), np.float64(2.5))
np.save(p("empty.npy"), np.zeros((0, 3), "<i2"))
for major in (2, 3):
    with open(p("v%d.npy" % major), "wb") as f:
        np.lib.format.write_array(f, np.arange(4, dtype="<i8"), version=(major, 0))
# ckpt's raw-bits convention for bfloat16, written by NumPy: 1.0 and -2.0.
np.save(p("bf16_bits.npy"), np.array([0x3F80, 0xC000], "<u2").view([("bfloat16", "<u2")]))
np.save(p("object.npy"), np.array([None, 1], dtype=object), allow_pickle=True)
arrays = {"a": np.arange(3, dtype="<f4"), "b.c": np.arange(4, dtype="<i8").reshape(2, 2)}
np.savez(p("savez.npz"), **arrays)
np.savez_compressed(p("savez_compressed.npz"), **arrays)
print("wrote", out)
