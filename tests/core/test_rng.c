/*
 * test_rng.c - the generator is deterministic per seed, its uniform, normal,
 * gamma and beta draws have the right moments, and `below` stays in range.
 */
#include "vmf_test.h"

#include <math.h>

static void test_determinism_and_known_first_outputs(void **state)
{
    (void)state;
    vmf_rng a, b;
    vmf_rng_seed(&a, 12345);
    vmf_rng_seed(&b, 12345);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(vmf_rng_u64(&a), vmf_rng_u64(&b));
    vmf_rng_seed(&b, 12346);
    assert_int_not_equal(vmf_rng_u64(&a), vmf_rng_u64(&b));
}

static void test_moments(void **state)
{
    (void)state;
    vmf_rng r;
    vmf_rng_seed(&r, 7);
    enum { N = 200000 };
    double su = 0, sn = 0, sn2 = 0, sg = 0, sb = 0;
    for (int i = 0; i < N; i++) {
        double u = vmf_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        su += u;
        double z = vmf_rng_normal(&r);
        sn += z;
        sn2 += z * z;
        sg += vmf_rng_gamma(&r, 0.5);
        sb += vmf_rng_beta(&r, 2.0, 6.0);
        assert_true(vmf_rng_below(&r, 10) < 10);
    }
    vmf_assert_close(su / N, 0.5, 0, 0.005);
    vmf_assert_close(sn / N, 0.0, 0, 0.01);
    vmf_assert_close(sn2 / N, 1.0, 0, 0.01);
    vmf_assert_close(sg / N, 0.5, 0, 0.01);
    vmf_assert_close(sb / N, 0.25, 0, 0.005);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism_and_known_first_outputs),
        cmocka_unit_test(test_moments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
