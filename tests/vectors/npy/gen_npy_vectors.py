#!/usr/bin/python3
"""Writes the numpy-made .npy/.npz fixtures that test_npy and test_npz read.

Run once with Debian's numpy (1.24) from this directory:
    /usr/bin/python3 gen_npy_vectors.py
The outputs are committed; the tests check that libvmfmm reads them bit for
bit and that its writer produces the same bytes as numpy.save for the arrays
marked "same bytes" in README.md. Values are fixed formulas, no randomness.
"""
import io
import os
import zipfile

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(here, name)


def grid(shape, dtype, scale=1.0):
    n = int(np.prod(shape))
    v = (np.arange(n, dtype=np.float64) - n / 3.0) * scale
    return v.reshape(shape).astype(dtype)


f4 = grid((4, 3), "<f4", 0.37)
f4[0, 0] = np.float32(1e-40)  # a subnormal
f4[0, 1] = np.float32(3.4028235e38)
f4[0, 2] = -0.0
np.save(path("f4_4x3.npy"), f4)
np.save(path("f8_5.npy"), grid((5,), "<f8", np.pi))
np.save(path("i2_2x3.npy"), np.array([[-32768, -1, 0], [1, 2, 32767]], dtype="<i2"))
np.save(path("i4_6.npy"), np.array([-2147483648, -7, 0, 7, 100000, 2147483647], dtype="<i4"))
np.save(path("i8_3.npy"), np.array([-(2**63), 0, 2**63 - 1], dtype="<i8"))
np.save(path("u1_2x2x2.npy"), np.arange(8, dtype="|u1").reshape(2, 2, 2) * 36)
np.save(path("U_4.npy"), np.array(["cat", "", "caf\u00e9", "\u65e5\u672c\U0001f642"]))
np.save(path("f8_scalar.npy"), np.array(2.5, dtype="<f8"))
np.save(path("f4_0x4.npy"), np.zeros((0, 4), dtype="<f4"))
# A first dimension with many digits changes numpy's growth padding (no data).
np.save(path("u1_123456x0.npy"), np.zeros((123456, 0), dtype="|u1"))

# Versions 2.0 and 3.0 (written explicitly; numpy.save picks 1.0 for these).
for ver in [(2, 0), (3, 0)]:
    with open(path("f4_2x2_v%d.npy" % ver[0]), "wb") as fp:
        np.lib.format.write_array(fp, np.array([[1, 2], [3, 4]], dtype="<f4"), version=ver)

# npz: stored (np.savez) and deflated (np.savez_compressed) with X and y.
X = grid((6, 3), "<f4", 0.125)
y = np.array(["a", "b", "a", "c", "b", "a"])
np.savez(path("Xy_stored.npz"), X=X, y=y)
np.savez_compressed(path("Xy_deflated.npz"), X=X, y=np.array([0, 1, 0, 2, 1, 0], dtype="<i4"))
np.savez_compressed(path("only_X.npz"), X=X)
