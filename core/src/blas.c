/*
 * blas.c - the single wrapper through which libvmfmm calls BLAS. Keeping one
 * call site makes the row-major convention and the size casts impossible to
 * get wrong elsewhere, and gives benchmarks one place to account for.
 */
#include "internal.h"

#include <cblas.h>

void vmf__sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t kk, float alpha,
                const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                size_t ldc)
{
    if (m == 0 || n == 0)
        return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)kk, alpha, a,
                (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}
