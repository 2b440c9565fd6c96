/*
 * vecmath.h - what the library's vectorized row kernels share: the
 * attributes that let GCC vectorize them and pick the widest instruction set
 * at load time, and exp() for non-positive arguments as branch-free
 * polynomials, in float (the EM kernel's responsibilities, mixture_kernels.c)
 * and in double (the refinement head's softmax, classifier_predict.c).
 * Also used by vmfsim's linear families (sim/vmfsim/model_linear.c), so
 * there is one float exp in the project. Never installed; self-contained.
 *
 * Why not libm's exp: a kernel's loop over classes or components calls exp
 * once per dot product of a GEMM that is thin (K = 50 to 1,000 columns),
 * so libm's scalar call would cost as much as the GEMM itself; these
 * polynomials vectorize and stay within a few ulp (float: 2^-23 relative;
 * double: 3 ulp; test_vecmath).
 */
#ifndef VMFMM_VECMATH_H
#define VMFMM_VECMATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Kernels are compiled without trapping math so that GCC can if-convert the
 * clamps and vectorize; the code never inspects FP exception flags, so
 * nothing observable changes.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define VMF_VECTORIZE __attribute__((optimize("no-trapping-math")))
#else
#define VMF_VECTORIZE
#endif

/*
 * On x86-64 a row kernel is also compiled for AVX2 and AVX-512 and the
 * widest one the CPU supports is chosen at load time (GCC function
 * multi-versioning through an ifunc). Every clone computes the same bits:
 * the operations are element-wise IEEE ones, C11 mode does not contract them
 * into FMAs, and the reductions are spelled out in a fixed lane order
 * (VMF_LANES). ThreadSanitizer builds keep the one default version: the
 * ifunc resolver would run, instrumented, before the sanitizer's runtime is
 * initialised. Put it on static functions only: a global target_clones
 * function exports its resolver whatever its visibility.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_THREAD__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define VMF_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
#endif
#ifndef VMF_CLONES
#define VMF_CLONES
#endif

/* Lanes of the manual reductions: wide enough for AVX-512 doubles, cheap for SSE2. */
#define VMF_LANES 8

/*
 * The maximum and the sum of v [n], reduced over VMF_LANES fixed lanes and
 * then the tail in order: the loops vectorize and every clone of the caller
 * gets the same bits. The maximum of n = 0 values is -inf.
 *
 * Every maximum over lanes in the project puts `#pragma GCC unroll 1`
 * before its inner loop over the lanes: at -O3 GCC peels that loop into
 * VMF_LANES scalars before vectorizing and then keeps the maximum scalar
 * (one vmaxsd per lane), where a sum still becomes one vector add; kept a
 * loop, it becomes one vmaxpd (the same bits: GCC uses it only where it
 * computes exactly `v > m ? v : m`). Clang reads the pragma too.
 */
static inline VMF_VECTORIZE double vmf__lanes_max(const double *v, size_t n)
{
    size_t kl = n - n % VMF_LANES;
    double ml[VMF_LANES], mx = -INFINITY;
    for (size_t l = 0; l < VMF_LANES; l++)
        ml[l] = -INFINITY;
    for (size_t q = 0; q < kl; q += VMF_LANES) {
#pragma GCC unroll 1
        for (size_t l = 0; l < VMF_LANES; l++)
            ml[l] = v[q + l] > ml[l] ? v[q + l] : ml[l];
    }
    for (size_t l = 0; l < VMF_LANES; l++)
        mx = ml[l] > mx ? ml[l] : mx;
    for (size_t q = kl; q < n; q++)
        mx = v[q] > mx ? v[q] : mx;
    return mx;
}

static inline VMF_VECTORIZE double vmf__lanes_sum(const double *v, size_t n)
{
    size_t kl = n - n % VMF_LANES;
    double sl[VMF_LANES] = {0}, s = 0.0;
    for (size_t q = 0; q < kl; q += VMF_LANES)
        for (size_t l = 0; l < VMF_LANES; l++)
            sl[l] += v[q + l];
    for (size_t l = 0; l < VMF_LANES; l++)
        s += sl[l];
    for (size_t q = kl; q < n; q++)
        s += v[q];
    return s;
}

/*
 * exp(x) for x <= 0 in float: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite
 * split of ln2, n by the 1.5·2^23 rounding trick), exp(r) by its degree-7
 * Taylor polynomial (truncation error r^8/8! < 5.3e-9 relative, under
 * 2^-27), times 2^n built in the exponent bits. Relative error at most
 * 1.02e-7 (< 2^-23) over [-87, 0], checked exhaustively against exp() in
 * double for every float there (test_vecmath checks a stride of them); below -87 the result is 0
 * (exp(-87) < 2^-125, far beneath float resolution next to a row maximum's
 * exp(0) = 1), and -inf gives 0 as well.
 */
static inline VMF_VECTORIZE float vmf__expf_nonpos(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    float xc = x < -87.0f ? -87.0f : x;
    float t = xc * 1.44269504088896341f;
    float nf = (t + magic) - magic;
    float r = xc - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = (int32_t)nf + 127;
    uint32_t bits = (uint32_t)e << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    float y = p * s;
    return x < -87.0f ? 0.0f : y;
}

/*
 * The argument below which vmf__exp_nonpos returns 0: exp(-700) is about
 * 1e-304, still a normal double, and a softmax term that small next to the
 * maximum's exp(0) = 1 cannot change a double sum.
 */
#define VMF_EXP_NONPOS_MIN (-700.0)

/*
 * exp(t) for t <= 0 in double: Cody-Waite reduction t = k ln 2 + r,
 * |r| <= ln(2)/2, with k by the 1.5·2^52 rounding trick, a degree-12 Taylor
 * polynomial in r (truncation below 2e-16 relative) and 2^k put in the
 * exponent bits, taken from the low bits of the rounded sum (integer adds
 * and shifts only, so it vectorizes with AVX2 too). Within 3 ulp of exp on
 * [VMF_EXP_NONPOS_MIN, 0] (the rounding of the Horner steps; test_vecmath);
 * 0 below it and for -inf.
 */
static inline VMF_VECTORIZE double vmf__exp_nonpos(double t)
{
    const double log2e = 1.4426950408889634, ln2_hi = 6.93147180369123816490e-01,
                 ln2_lo = 1.90821492927058770002e-10, shift = 6755399441055744.0;
    double tc = t < VMF_EXP_NONPOS_MIN ? VMF_EXP_NONPOS_MIN : t;
    double z = tc * log2e + shift; /* shift + k, k = round(tc log2 e) */
    double kd = z - shift;
    double r = (tc - kd * ln2_hi) - kd * ln2_lo;
    double p = 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    /* z's low bits hold k in two's complement; the bits of shift shift out. */
    uint64_t zb;
    memcpy(&zb, &z, sizeof zb);
    uint64_t eb = (zb + 1023u) << 52;
    double s;
    memcpy(&s, &eb, sizeof s);
    double y = p * s;
    return t < VMF_EXP_NONPOS_MIN ? 0.0 : y;
}

#endif
