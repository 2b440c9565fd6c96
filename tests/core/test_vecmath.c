/*
 * test_vecmath.c - the branch-free exponentials of the vectorized kernels
 * (core/shared/vecmath.h) against libm's exp in double: the float one within
 * 1.02e-7 relative on a stride of every float in [-87, 0], the double one
 * within 3 ulp on a dense grid and random points of [-700, 0], both exact
 * at 0 and 0 below their range and at -inf.
 */
#include "vecmath.h"
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void test_expf_nonpos(void **state)
{
    (void)state;
    /* Every 61st float from -0 down to -87 (the bit patterns run upwards as x falls). */
    float x = -0.0f;
    uint32_t bits, end;
    memcpy(&bits, &x, sizeof bits);
    float lo = -87.0f;
    memcpy(&end, &lo, sizeof end);
    double worst = 0.0;
    size_t count = 0;
    for (; bits <= end; bits += 61, count++) {
        memcpy(&x, &bits, sizeof x);
        double want = exp((double)x), got = (double)vmf__expf_nonpos(x);
        double err = fabs(got - want) / want;
        worst = err > worst ? err : worst;
    }
    printf("# expf_nonpos: %zu floats in [-87, 0], worst relative error %.3g\n", count, worst);
    assert_true(count > 10000000);
    assert_true(worst <= 1.02e-7);
    assert_true(vmf__expf_nonpos(0.0f) == 1.0f);
    assert_true(vmf__expf_nonpos(-87.5f) == 0.0f);
    assert_true(vmf__expf_nonpos(-1e30f) == 0.0f);
    assert_true(vmf__expf_nonpos(-INFINITY) == 0.0f);
}

static void test_exp_nonpos(void **state)
{
    (void)state;
    vmf_rng rng;
    vmf_rng_seed(&rng, 17);
    double worst = 0.0;
    const size_t grid = 1400000;
    for (size_t i = 0; i <= grid + 1000000; i++) {
        /* A grid of step 1/2000 over [-700, 0], then uniform random points. */
        double t = i <= grid ? -(double)i / 2000.0 : -700.0 * vmf_rng_uniform(&rng);
        double want = exp(t), got = vmf__exp_nonpos(t);
        double ulp = nextafter(want, INFINITY) - want;
        double err = fabs(got - want) / ulp;
        worst = err > worst ? err : worst;
    }
    printf("# exp_nonpos: worst error %.2f ulp over [-700, 0]\n", worst);
    assert_true(worst <= 3.0);
    assert_true(vmf__exp_nonpos(0.0) == 1.0);
    assert_true(vmf__exp_nonpos(-0.0) == 1.0);
    assert_true(vmf__exp_nonpos(-700.5) == 0.0);
    assert_true(vmf__exp_nonpos(-1e300) == 0.0);
    assert_true(vmf__exp_nonpos(-INFINITY) == 0.0);
    /* Tiny arguments: exp(t) = 1 + t to the last bit. */
    assert_true(vmf__exp_nonpos(-1e-17) == 1.0);
    assert_true(vmf__exp_nonpos(-1e-10) == exp(-1e-10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expf_nonpos),
        cmocka_unit_test(test_exp_nonpos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
