/*
 * mixture_seed.c - initial means for a vMF mixture: k distinct random rows,
 * or k-means++ seeding (Arthur & Vassilvitskii 2007) under the cosine
 * distance.
 */
#include "internal.h"
#include "mixture_internal.h"

#include <math.h>
#include <string.h>

/* ---- seeding ---- */

int vmf__random_rows(const float *x, size_t n, size_t d, size_t k, vmf_rng *rng, float *means)
{
    if (k == 0 || n < k)
        return vmf__error(VMF_EINVAL, "random init: need n >= k >= 1 (n=%zu, k=%zu)", n, k);
    size_t *pick = vmf__malloc_array(k, sizeof *pick);
    if (!pick)
        return vmf__error(VMF_ENOMEM, "random init: out of memory");
    /* Floyd: for j = n-k .. n-1 draw t in [0, j]; take t unless taken, else j. */
    size_t got = 0;
    for (size_t j = n - k; j < n; j++) {
        size_t t = (size_t)vmf_rng_below(rng, (uint64_t)j + 1);
        for (size_t q = 0; q < got; q++)
            if (pick[q] == t) {
                t = j;
                break;
            }
        pick[got++] = t;
    }
    for (size_t c = 0; c < k; c++)
        memcpy(means + c * d, x + pick[c] * d, d * sizeof *means);
    vmf__free(pick);
    return VMF_OK;
}

/* dist[i] = min(dist[i], 1 - x_i^T mu) over all rows, blocked; returns the new sum. */
static double kpp_update(const float *x, size_t n, size_t d, const float *mu, double *dist,
                         float *dots, size_t block)
{
    double total = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += block) {
        size_t rows = n - i0 < block ? n - i0 : block;
        vmf__sgemm(0, 1, rows, 1, d, 1.0f, x + i0 * d, d, mu, d, 0.0f, dots, 1);
        for (size_t i = 0; i < rows; i++) {
            double dd = 1.0 - (double)dots[i];
            if (dd < 0.0) /* rounding of a row against itself */
                dd = 0.0;
            if (dd < dist[i0 + i])
                dist[i0 + i] = dd;
            total += dist[i0 + i];
        }
    }
    return total;
}

/* A row drawn with probability dist[i] / total (uniform when total is 0). */
static size_t kpp_draw(const double *dist, size_t n, double total, vmf_rng *rng)
{
    if (!(total > 0.0))
        return (size_t)vmf_rng_below(rng, n);
    double u = vmf_rng_uniform(rng) * total, acc = 0.0;
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (dist[i] > 0.0)
            last = i;
        acc += dist[i];
        if (u < acc && dist[i] > 0.0)
            return i;
    }
    return last; /* u rounded past the cumulative sum */
}

int vmf__kmeanspp(const float *x, size_t n, size_t d, size_t k, vmf_rng *rng, float *means)
{
    if (k == 0 || n < k)
        return vmf__error(VMF_EINVAL, "k-means++: need n >= k >= 1 (n=%zu, k=%zu)", n, k);
    /*
     * Greedy variant (as scikit-learn's): the best of 2 + floor(ln k)
     * candidates per step. Their dot products with every row are kept
     * (float [n][trials], O(n log k)), so that adopting the winner needs no
     * second pass over the data: one pass per chosen mean.
     */
    size_t trials = 2 + (size_t)log((double)k);
    size_t block = VMF__BLOCK_ROWS, nt;
    if (vmf__mul_overflow(n, trials, &nt) != 0)
        return vmf__error(VMF_ENOMEM, "k-means++: %zu rows x %zu candidates overflow", n, trials);
    double *dist = vmf__malloc_array(n, sizeof *dist);
    float *dots = vmf__malloc_array(nt, sizeof *dots);
    float *cand = vmf__malloc_array(trials * d, sizeof *cand);
    double *pot = vmf__malloc_array(trials, sizeof *pot);
    int rc = VMF_OK;
    if (!dist || !dots || !cand || !pot) {
        rc = vmf__error(VMF_ENOMEM, "k-means++: out of memory for %zu rows", n);
        goto done;
    }
    size_t first = (size_t)vmf_rng_below(rng, n);
    memcpy(means, x + first * d, d * sizeof *means);
    for (size_t i = 0; i < n; i++)
        dist[i] = INFINITY;
    double total = kpp_update(x, n, d, means, dist, dots, block);
    for (size_t c = 1; c < k; c++) {
        for (size_t t = 0; t < trials; t++) {
            size_t row = kpp_draw(dist, n, total, rng);
            memcpy(cand + t * d, x + row * d, d * sizeof *cand);
            pot[t] = 0.0;
        }
        /* Potential sum_i min(dist_i, 1 - x_i^T cand_t) of each candidate. */
        for (size_t i0 = 0; i0 < n; i0 += block) {
            size_t rows = n - i0 < block ? n - i0 : block;
            float *db = dots + i0 * trials;
            vmf__sgemm(0, 1, rows, trials, d, 1.0f, x + i0 * d, d, cand, d, 0.0f, db, trials);
            for (size_t i = 0; i < rows; i++)
                for (size_t t = 0; t < trials; t++) {
                    double dd = 1.0 - (double)db[i * trials + t];
                    dd = dd < 0.0 ? 0.0 : dd;
                    pot[t] += dd < dist[i0 + i] ? dd : dist[i0 + i];
                }
        }
        size_t best = 0;
        for (size_t t = 1; t < trials; t++)
            if (pot[t] < pot[best])
                best = t;
        memcpy(means + c * d, cand + best * d, d * sizeof *means);
        total = 0.0;
        for (size_t i = 0; i < n; i++) {
            double dd = 1.0 - (double)dots[i * trials + best];
            dd = dd < 0.0 ? 0.0 : dd;
            if (dd < dist[i])
                dist[i] = dd;
            total += dist[i];
        }
    }
done:
    vmf__free(dist);
    vmf__free(dots);
    vmf__free(cand);
    vmf__free(pot);
    return rc;
}
