"""Branch-free log2 and sin/cos that LLVM can vectorize (SIMD) inside numba loops.

libm's ``log2``, ``sin`` and ``cos`` are opaque scalar calls, so a loop that calls them cannot
be vectorized; these versions are straight-line float arithmetic plus bit casts, and compile to
SIMD code (8 lanes with AVX-512).

- :func:`log2`: fdlibm's ``__ieee754_log`` reduction and its degree-14 polynomial (error below
  1 ulp of ln), for *normal positive* x only (callers clip to >= 1e-300 first).
- :func:`sin_cos`: Cody-Waite reduction by pi/2 in three 33-bit pieces (exact for
  |x| < 2^20 pi/2 ~ 1.6e6; use :data:`SIN_COS_MAX_ARG` to decide) and fdlibm's
  ``__kernel_sin``/``__kernel_cos`` polynomials on [-pi/4, pi/4] (about 1 ulp).

Both are checked against numpy over their whole range in tests/kernels/test_fastmath.py.

Both evaluate their polynomials with :func:`fma` (fused multiply-add, one rounding), which halves
the arithmetic on FMA hardware. It is written explicitly, not left to ``fastmath`` contraction:
an explicit ``llvm.fma`` is the same operation in every compilation, so results stay bit-for-bit
reproducible between a fresh compile and the on-disk cache (see :mod:`._jit`).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ._jit import leaf


@intrinsic
def _float_bits(typingctx, x):
    """Reinterpret a float64 as int64 (bit cast, no conversion)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_float(typingctx, x):
    """Reinterpret an int64 as float64 (bit cast, no conversion)."""
    if x != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once (IEEE fusedMultiplyAdd, ``llvm.fma.f64``); float64 only."""
    if not (a == types.float64 and b == types.float64 and c == types.float64):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(args[0], args[1], args[2])

    return types.float64(types.float64, types.float64, types.float64), codegen


_LN2_INV = 1.4426950408889634074
_SQRT2 = 1.4142135623730950488
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_EXP = 0x3FF0000000000000


@leaf
def log2(x):
    """log2(x) for normal x > 0 (no checks; x <= 0, inf, NaN and subnormals give garbage)."""
    bits = _float_bits(x)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _bits_float((bits & _MANTISSA) | _ONE_EXP)  # m in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m  # m in (sqrt(2)/2, sqrt(2)]
    e = e + 1 if big else e
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    # r = z (LG1 + w (LG3 + w (LG5 + w LG7))) + w (LG2 + w (LG4 + w LG6))
    odd = fma(w, fma(w, fma(w, _LG7, _LG5), _LG3), _LG1)
    even = fma(w, fma(w, _LG6, _LG4), _LG2)
    r = fma(z, odd, w * even)
    hfsq = 0.5 * f * f
    ln1pf = f - fma(-s, hfsq + r, hfsq)  # f - (hfsq - s (hfsq + r))
    return fma(ln1pf, _LN2_INV, np.float64(e))


_PIO2_1 = 1.57079632673412561417e00  # first 33 bits of pi/2
_PIO2_2 = 6.07710050630396597660e-11  # next 33 bits
_PIO2_3 = 2.02226624871116645580e-21  # next 33 bits
_TWO_OVER_PI = 6.36619772367581382433e-01
_ROUND = 6755399441055744.0  # 1.5 * 2^52: adding and subtracting rounds to an integer
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11

SIN_COS_MAX_ARG = 1.0e6  # |x| below this: sin_cos is accurate to a few ulp


@leaf
def sin_cos(x):
    """(sin x, cos x) for |x| < SIN_COS_MAX_ARG, branch-free."""
    k = (x * _TWO_OVER_PI + _ROUND) - _ROUND
    r = fma(-k, _PIO2_3, fma(-k, _PIO2_2, fma(-k, _PIO2_1, x)))  # x - k pi/2 in three pieces
    q = np.int64(k)
    z = r * r
    sin_poly = fma(z, fma(z, fma(z, fma(z, fma(z, _S6, _S5), _S4), _S3), _S2), _S1)
    cos_poly = fma(z, fma(z, fma(z, fma(z, fma(z, _C6, _C5), _C4), _C3), _C2), _C1)
    sin_r = fma(r * z, sin_poly, r)
    cos_r = fma(z * z, cos_poly, 1.0 - 0.5 * z)
    swap = (q & 1) != 0
    s = cos_r if swap else sin_r
    c = sin_r if swap else cos_r
    s = -s if (q & 2) != 0 else s
    c = -c if ((q + 1) & 2) != 0 else c
    return s, c
