/*
 * test_knn.c - the cosine k-NN classifier: hand-computed votes, deterministic
 * ties, agreement with a brute-force double-precision reference across block
 * boundaries, padding, reservoirs (sizes, membership, uniformity,
 * determinism), all-or-nothing adds under bad input and injected allocation
 * failures, and accuracy on the real fmnist-cce64 embeddings.
 */
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The documented vote weight: exp((sim - 1) / 0.02). */
static double vote(double sim)
{
    return exp((sim - 1.0) / 0.02);
}

static void unit2(double deg, float *out)
{
    double r = deg * 3.14159265358979323846 / 180.0;
    out[0] = (float)cos(r);
    out[1] = (float)sin(r);
}

static double dot2(const float *a, const float *b)
{
    return (double)a[0] * b[0] + (double)a[1] * b[1];
}

static vmf_knn_classifier *new_model(size_t k, size_t reservoir, uint64_t seed, size_t d)
{
    vmf_knn_opts o;
    vmf_knn_opts_init(&o);
    assert_int_equal(o.k, 10);
    assert_int_equal(o.reservoir_per_class, 0);
    o.k = k;
    o.reservoir_per_class = reservoir;
    o.seed = seed;
    vmf_knn_classifier *m;
    vmf_assert_ok(vmf_knn_classifier_new(&o, d, &m));
    return m;
}

static void test_hand_computed_votes(void **state)
{
    (void)state;
    /* d = 2: "a" at 0 and 10 degrees, "b" at 30, "c" at 180. */
    float rows[4][2];
    unit2(0, rows[0]);
    unit2(10, rows[1]);
    unit2(30, rows[2]);
    unit2(180, rows[3]);
    const char *lab[4] = {"a", "a", "b", "c"};
    vmf_labels y = {4, NULL, lab};
    vmf_knn_classifier *m2 = new_model(2, 0, 1, 2), *m3 = new_model(3, 0, 1, 2);
    vmf_assert_ok(vmf_knn_classifier_add(m2, &rows[0][0], 4, 2, &y));
    vmf_assert_ok(vmf_knn_classifier_add(m3, &rows[0][0], 4, 2, &y));
    assert_int_equal(vmf_knn_classifier_n_rows(m2), 4);
    assert_int_equal(vmf_knn_classifier_dim(m2), 2);
    float q[2];
    unit2(18, q);
    int32_t c[5];
    double p[5];
    /* k = 2: neighbours at 10 ("a") and 30 ("b"); "c" has no vote and comes last. */
    vmf_assert_ok(vmf_knn_classifier_predict_topk(m2, q, 1, 2, 5, c, p));
    const vmf_label_table *t = vmf_knn_classifier_labels(m2);
    assert_string_equal(vmf_label_table_str(t, (size_t)c[0]), "a");
    assert_string_equal(vmf_label_table_str(t, (size_t)c[1]), "b");
    assert_string_equal(vmf_label_table_str(t, (size_t)c[2]), "c");
    assert_int_equal(c[3], -1);
    assert_int_equal(c[4], -1);
    double va = vote(dot2(q, rows[1])), vb = vote(dot2(q, rows[2]));
    vmf_assert_close(p[0], va / (va + vb), 1e-5, 0);
    vmf_assert_close(p[1], vb / (va + vb), 1e-5, 0);
    assert_true(p[2] == 0.0 && p[3] == 0.0 && p[4] == 0.0);
    /* k = 3 adds the row at 0 degrees to "a". */
    vmf_assert_ok(vmf_knn_classifier_predict_topk(m3, q, 1, 2, 2, c, p));
    va += vote(dot2(q, rows[0]));
    vmf_assert_close(p[0], va / (va + vb), 1e-5, 0);
    vmf_assert_close(p[1], vb / (va + vb), 1e-5, 0);
    /* A query at 170 degrees: "c" wins alone with share 1; "b" beats "a" on nearest similarity. */
    unit2(170, q);
    vmf_assert_ok(vmf_knn_classifier_predict_topk(m3, q, 1, 2, 3, c, p));
    /* k = 3 neighbours: 180 ("c"), 30 ("b"), 10 ("a"): every class votes. */
    assert_string_equal(vmf_label_table_str(t, (size_t)c[0]), "c");
    assert_string_equal(vmf_label_table_str(t, (size_t)c[1]), "b");
    assert_string_equal(vmf_label_table_str(t, (size_t)c[2]), "a");
    vmf_assert_ok(vmf_knn_classifier_predict_topk(m2, q, 1, 2, 3, c, p));
    assert_string_equal(vmf_label_table_str(t, (size_t)c[0]), "c");
    assert_string_equal(vmf_label_table_str(t, (size_t)c[1]), "b");
    assert_string_equal(vmf_label_table_str(t, (size_t)c[2]), "a");
    vmf_assert_close(p[0] + p[1], 1.0, 0, 1e-12);
    assert_true(p[2] == 0.0);
    vmf_knn_classifier_free(m2);
    vmf_knn_classifier_free(m3);
}

static void test_ties_are_deterministic(void **state)
{
    (void)state;
    /* The same row stored under "x" then "y": with k = 1 the earlier row wins. */
    float u[3][2];
    unit2(40, u[0]);
    unit2(40, u[1]);
    unit2(-90, u[2]);
    const char *lab[3] = {"x", "y", "z"};
    vmf_labels y = {3, NULL, lab};
    vmf_knn_classifier *m = new_model(1, 0, 1, 2);
    vmf_assert_ok(vmf_knn_classifier_add(m, &u[0][0], 3, 2, &y));
    int32_t c[3];
    double p[3];
    vmf_assert_ok(vmf_knn_classifier_predict_topk(m, u[0], 1, 2, 3, c, p));
    assert_int_equal(c[0], 0);
    assert_int_equal(c[1], 1); /* no vote, but its nearest row is as close as x's */
    assert_int_equal(c[2], 2);
    assert_true(p[0] == 1.0 && p[1] == 0.0 && p[2] == 0.0);
    vmf_knn_classifier_free(m);

    /* Mirror-image rows give bit-equal similarities to e_0: equal votes, lower class index first.
     */
    float v[2][2] = {{0.6f, -0.8f}, {0.6f, 0.8f}}, e0[2] = {1.0f, 0.0f};
    const char *lab2[2] = {"q", "p"};
    vmf_labels y2 = {2, NULL, lab2};
    m = new_model(2, 0, 1, 2);
    vmf_assert_ok(vmf_knn_classifier_add(m, &v[0][0], 2, 2, &y2));
    vmf_assert_ok(vmf_knn_classifier_predict_topk(m, e0, 1, 2, 2, c, p));
    assert_string_equal(vmf_label_table_str(vmf_knn_classifier_labels(m), (size_t)c[0]), "q");
    assert_true(p[0] == 0.5 && p[1] == 0.5);
    vmf_knn_classifier_free(m);
}

static void test_separated_classes_int_labels_and_padding(void **state)
{
    (void)state;
    enum { NTR = 3000, NTE = 1000, N = NTR + NTE, D = 16, C = 6, K = 8 };
    float *x = malloc(N * D * sizeof *x);
    int32_t *comp = malloc(N * sizeof *comp);
    int64_t *y = malloc(N * sizeof *y);
    vmf_test_mixture_data(21, N, D, C, 150.0, 150.0, x, comp, NULL, NULL, NULL);
    for (size_t i = 0; i < N; i++)
        y[i] = 1000 + 3 * comp[i];
    vmf_knn_classifier *m = new_model(10, 0, 42, D);
    int32_t *c = malloc(NTE * K * sizeof *c);
    double *p = malloc(NTE * K * sizeof *p);
    /* An empty model names no class. */
    vmf_assert_ok(vmf_knn_classifier_predict_topk(m, x, 3, D, 2, c, p));
    for (size_t t = 0; t < 6; t++)
        assert_true(c[t] == -1 && p[t] == 0.0);
    /* Rows arrive in three batches. */
    for (size_t b = 0; b < NTR; b += 1000) {
        vmf_labels lab = {1000, y + b, NULL};
        vmf_assert_ok(vmf_knn_classifier_add(m, x + b * D, 1000, D, &lab));
    }
    assert_int_equal(vmf_knn_classifier_n_rows(m), NTR);
    vmf_assert_ok(vmf_knn_classifier_predict_topk(m, x + NTR * D, NTE, D, K, c, p));
    const vmf_label_table *t = vmf_knn_classifier_labels(m);
    assert_int_equal(vmf_label_table_size(t), C);
    size_t hits = 0;
    for (size_t i = 0; i < NTE; i++) {
        hits += vmf_label_table_int(t, (size_t)c[i * K]) == y[NTR + i];
        double s = 0.0;
        for (size_t j = 0; j < C; j++) {
            assert_true(c[i * K + j] >= 0 && c[i * K + j] < C);
            s += p[i * K + j];
        }
        vmf_assert_close(s, 1.0, 0, 1e-12);
        assert_int_equal(c[i * K + 6], -1);
        assert_int_equal(c[i * K + 7], -1);
        assert_true(p[i * K + 6] == 0.0 && p[i * K + 7] == 0.0);
    }
    assert_true(hits > 0.99 * NTE);
    vmf_assert_ok(vmf_knn_classifier_predict_topk(m, x, 0, D, 2, NULL, NULL));
    free(c);
    free(p);
    free(comp);
    free(x);
    free(y);
    vmf_knn_classifier_free(m);
}

typedef struct ref_nb {
    double sim;
    size_t row;
} ref_nb;

static int cmp_ref(const void *a, const void *b)
{
    const ref_nb *u = a, *v = b;
    if (u->sim != v->sim)
        return u->sim < v->sim ? 1 : -1;
    return (u->row > v->row) - (u->row < v->row);
}

static void test_matches_brute_force_across_blocks(void **state)
{
    (void)state;
    /* 2500 stored rows (3 similarity blocks) and 600 queries (3 query blocks), 7 classes. */
    enum { NS = 2500, NQ = 600, D = 8, C = 7, KN = 10, K = 3 };
    float *xs = malloc(NS * D * sizeof *xs), *xq = malloc(NQ * D * sizeof *xq);
    int64_t *y = malloc(NS * sizeof *y);
    vmf_rng rng;
    vmf_rng_seed(&rng, 77);
    vmf_assert_ok(vmf_sample_uniform(D, NS, &rng, xs));
    vmf_assert_ok(vmf_sample_uniform(D, NQ, &rng, xq));
    for (size_t i = 0; i < NS; i++) /* classes 0..6 with a first-appearance order of 0..6 */
        y[i] = i < C ? (int64_t)i : (int64_t)vmf_rng_below(&rng, C);
    vmf_knn_classifier *m = new_model(KN, 0, 1, D);
    vmf_labels lab = {NS, y, NULL};
    vmf_assert_ok(vmf_knn_classifier_add(m, xs, NS, D, &lab));
    int32_t c[NQ * K];
    double p[NQ * K];
    vmf_assert_ok(vmf_knn_classifier_predict_topk(m, xq, NQ, D, K, c, p));
    ref_nb *nb = malloc(NS * sizeof *nb);
    size_t skipped = 0;
    for (size_t i = 0; i < NQ; i++) {
        double votes[C] = {0}, best[C], total = 0.0;
        for (size_t k = 0; k < C; k++)
            best[k] = -INFINITY;
        for (size_t s = 0; s < NS; s++) {
            double v = 0.0;
            for (size_t j = 0; j < D; j++)
                v += (double)xq[i * D + j] * xs[s * D + j];
            nb[s].sim = v;
            nb[s].row = s;
            if (v > best[y[s]])
                best[y[s]] = v;
        }
        qsort(nb, NS, sizeof *nb, cmp_ref);
        for (size_t j = 0; j < KN; j++) {
            votes[y[nb[j].row]] += vote(nb[j].sim);
            total += vote(nb[j].sim);
        }
        /* Rank classes: vote, then nearest similarity. */
        int order[C];
        for (int k = 0; k < C; k++)
            order[k] = k;
        for (int a = 1; a < C; a++)
            for (int b = a; b > 0; b--) {
                int u = order[b], w = order[b - 1];
                int better = votes[u] > votes[w] || (votes[u] == votes[w] && best[u] > best[w]);
                if (!better)
                    break;
                order[b] = w;
                order[b - 1] = u;
            }
        /* Float similarities may reorder near-ties; such rows are not comparable. */
        int near_tie = nb[KN - 1].sim - nb[KN].sim < 1e-5;
        for (int a = 0; a + 1 < K + 1 && a + 1 < C; a++) {
            int u = order[a], w = order[a + 1];
            if (votes[u] == 0.0 ? best[u] - best[w] < 1e-5 : votes[u] - votes[w] < 1e-4 * total)
                near_tie = 1;
        }
        if (near_tie) {
            skipped++;
            continue;
        }
        for (size_t j = 0; j < K; j++) {
            assert_int_equal(c[i * K + j], order[j]);
            vmf_assert_close(p[i * K + j], votes[order[j]] / total, 1e-4, 1e-12);
        }
    }
    print_message("brute force: %zu of %d rows skipped as near-ties\n", skipped, NQ);
    assert_true(skipped < NQ / 10);
    free(nb);
    free(xs);
    free(xq);
    free(y);
    vmf_knn_classifier_free(m);
}

static void test_reservoir(void **state)
{
    (void)state;
    /* Class "few" gives 3 rows, class "many" 50: a reservoir of 5 keeps 3 + 5. */
    enum { D = 2 };
    float x[53][D];
    const char *lab[53];
    for (int i = 0; i < 53; i++) {
        unit2(0.5 * i, x[i]);
        lab[i] = i % 20 == 0 ? "few" : "many";
    }
    vmf_labels y = {53, NULL, lab};
    vmf_knn_classifier *m = new_model(3, 5, 9, D), *m2 = new_model(3, 5, 9, D);
    vmf_assert_ok(vmf_knn_classifier_add(m, &x[0][0], 53, D, &y));
    for (size_t b = 0; b < 53; b += 10) { /* the same rows in batches: the same reservoir */
        vmf_labels yb = {b + 10 <= 53 ? 10 : 53 - b, NULL, lab + b};
        vmf_assert_ok(vmf_knn_classifier_add(m2, &x[b][0], yb.n, D, &yb));
    }
    assert_int_equal(vmf_knn_classifier_n_rows(m), 8);
    assert_int_equal(vmf_knn_classifier_n_rows(m2), 8);
    assert_memory_equal(vmf_knn_classifier_rows(m), vmf_knn_classifier_rows(m2),
                        8 * D * sizeof(float));
    const float *r = vmf_knn_classifier_rows(m);
    const int32_t *rc = vmf_knn_classifier_row_classes(m);
    const vmf_label_table *t = vmf_knn_classifier_labels(m);
    size_t per[2] = {0, 0};
    for (size_t s = 0; s < 8; s++) {
        per[rc[s]]++;
        int found = 0; /* each stored row is one of its class's rows */
        for (int i = 0; i < 53; i++)
            if (memcmp(r + s * D, x[i], sizeof x[i]) == 0 &&
                strcmp(lab[i], vmf_label_table_str(t, (size_t)rc[s])) == 0)
                found = 1;
        assert_true(found);
    }
    assert_int_equal(per[0], 3);
    assert_int_equal(per[1], 5);
    vmf_knn_classifier_free(m);
    vmf_knn_classifier_free(m2);
}

static void test_reservoir_is_uniform(void **state)
{
    (void)state;
    /* 40 rows of one class, reservoir 4, over 2000 seeds: each row is kept with p = 0.1. */
    enum { N = 40, R = 4, SEEDS = 2000, D = 2 };
    float x[N][D];
    int64_t lab[N] = {0};
    for (int i = 0; i < N; i++)
        unit2(2.0 * i, x[i]);
    unsigned kept[N] = {0};
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        vmf_knn_classifier *m = new_model(1, R, seed, D);
        for (size_t b = 0; b < N; b += 7) {
            vmf_labels yb = {b + 7 <= N ? 7 : N - b, lab, NULL};
            vmf_assert_ok(vmf_knn_classifier_add(m, x[b], yb.n, D, &yb));
        }
        assert_int_equal(vmf_knn_classifier_n_rows(m), R);
        const float *r = vmf_knn_classifier_rows(m);
        for (size_t s = 0; s < R; s++)
            for (int i = 0; i < N; i++)
                if (memcmp(r + s * D, x[i], sizeof x[i]) == 0)
                    kept[i]++;
        vmf_knn_classifier_free(m);
    }
    /* Binomial(2000, 0.1): mean 200, sd 13.4; the bounds are 4.5 sd. */
    for (int i = 0; i < N; i++) {
        if (kept[i] < 140 || kept[i] > 260)
            print_error("row %d kept %u times\n", i, kept[i]);
        assert_true(kept[i] >= 140 && kept[i] <= 260);
    }
}

/* Snapshot of everything observable about a model, to check all-or-nothing adds. */
typedef struct snap {
    size_t n, classes;
    int32_t c[40];
    double p[40];
} snap;

static void take(const vmf_knn_classifier *m, const float *q, snap *s)
{
    s->n = vmf_knn_classifier_n_rows(m);
    s->classes = vmf_label_table_size(vmf_knn_classifier_labels(m));
    vmf_assert_ok(
        vmf_knn_classifier_predict_topk(m, q, 10, vmf_knn_classifier_dim(m), 4, s->c, s->p));
}

static void assert_same(const snap *a, const snap *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->classes, b->classes);
    assert_memory_equal(a->c, b->c, sizeof a->c);
    assert_memory_equal(a->p, b->p, sizeof a->p);
}

static void test_bad_input_changes_nothing(void **state)
{
    (void)state;
    enum { N = 60, D = 5 };
    float *x = malloc(N * D * sizeof *x);
    int32_t comp[N];
    int64_t y[N];
    vmf_test_mixture_data(5, N, D, 3, 20.0, 20.0, x, comp, NULL, NULL, NULL);
    for (int i = 0; i < N; i++)
        y[i] = comp[i];
    vmf_knn_classifier *m = new_model(5, 0, 1, D);
    vmf_labels half = {N / 2, y, NULL};
    vmf_assert_ok(vmf_knn_classifier_add(m, x, N / 2, D, &half));
    snap before, after;
    take(m, x + 40 * D, &before);
    float *xb = x + (N / 2) * D;
    vmf_labels rest = {N / 2, y + N / 2, NULL};
    assert_int_equal(vmf_knn_classifier_add(m, xb, N / 2, D + 1, &rest), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "dimension 6"));
    assert_int_equal(vmf_knn_classifier_add(m, xb, 0, D, &rest), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "n = 0"));
    vmf_labels short_lab = {N / 2 - 1, y + N / 2, NULL};
    assert_int_equal(vmf_knn_classifier_add(m, xb, N / 2, D, &short_lab), VMF_EINVAL);
    assert_int_equal(vmf_knn_classifier_add(m, xb, N / 2, D, NULL), VMF_EINVAL);
    assert_int_equal(vmf_knn_classifier_add(m, NULL, N / 2, D, &rest), VMF_EINVAL);
    assert_int_equal(vmf_knn_classifier_add(NULL, xb, N / 2, D, &rest), VMF_EINVAL);
    float keep = xb[4 * D + 2];
    xb[4 * D + 2] = NAN;
    assert_int_equal(vmf_knn_classifier_add(m, xb, N / 2, D, &rest), VMF_EINVAL);
    xb[4 * D + 2] = keep;
    float row[D];
    memcpy(row, xb + 9 * D, sizeof row);
    memset(xb + 9 * D, 0, sizeof row);
    assert_int_equal(vmf_knn_classifier_add(m, xb, N / 2, D, &rest), VMF_EINVAL);
    memcpy(xb + 9 * D, row, sizeof row);
    /* String labels after integer ones: rejected, even though the rows are fine. */
    const char *s[N / 2];
    for (int i = 0; i < N / 2; i++)
        s[i] = "new";
    vmf_labels strs = {N / 2, NULL, s};
    assert_int_equal(vmf_knn_classifier_add(m, xb, N / 2, D, &strs), VMF_EINVAL);
    take(m, x + 40 * D, &after);
    assert_same(&before, &after);
    /* Prediction errors. */
    int32_t c[4];
    assert_int_equal(vmf_knn_classifier_predict_topk(m, x, 1, D - 1, 4, c, NULL), VMF_EINVAL);
    assert_int_equal(vmf_knn_classifier_predict_topk(m, x, 1, D, 0, c, NULL), VMF_EINVAL);
    assert_int_equal(vmf_knn_classifier_predict_topk(m, x, 1, D, 4, NULL, NULL), VMF_EINVAL);
    /* Constructor errors. */
    vmf_knn_opts o;
    vmf_knn_opts_init(&o);
    o.k = 0;
    vmf_knn_classifier *bad = (vmf_knn_classifier *)&o;
    assert_int_equal(vmf_knn_classifier_new(&o, D, &bad), VMF_EINVAL);
    assert_null(bad);
    vmf_knn_opts_init(&o);
    assert_int_equal(vmf_knn_classifier_new(&o, 0, &bad), VMF_EINVAL);
    assert_int_equal(vmf_knn_classifier_new(&o, D, NULL), VMF_EINVAL);
    vmf_assert_ok(vmf_knn_classifier_new(NULL, D, &bad)); /* NULL options: the defaults */
    vmf_knn_classifier_free(bad);
    vmf_knn_classifier_free(NULL);
    free(x);
    vmf_knn_classifier_free(m);
}

static void run_enomem_walk(size_t reservoir)
{
    enum { N = 300, D = 6 };
    float *x = malloc(N * D * sizeof *x);
    int32_t comp[N];
    int64_t y[N];
    vmf_test_mixture_data(6, N, D, 5, 20.0, 20.0, x, comp, NULL, NULL, NULL);
    for (int i = 0; i < N; i++)
        y[i] = comp[i] < 3 ? comp[i] : 10 + comp[i]; /* classes 13 and 14 only in the 2nd batch */
    /* The first batch holds classes 0..2 only. */
    size_t n1 = 0;
    float *x1 = malloc(N * D * sizeof *x1), *x2 = malloc(N * D * sizeof *x2);
    int64_t y1[N], y2[N];
    size_t n2 = 0;
    for (int i = 0; i < N; i++) {
        if (i < N / 2 && y[i] < 3) {
            memcpy(x1 + n1 * D, x + i * D, D * sizeof *x);
            y1[n1++] = y[i];
        } else {
            memcpy(x2 + n2 * D, x + i * D, D * sizeof *x);
            y2[n2++] = y[i];
        }
    }
    vmf_knn_classifier *m = new_model(4, reservoir, 3, D);
    vmf_labels l1 = {n1, y1, NULL}, l2 = {n2, y2, NULL};
    vmf_assert_ok(vmf_knn_classifier_add(m, x1, n1, D, &l1));
    snap before, after;
    take(m, x, &before);
    long fail;
    int rc;
    for (fail = 0;; fail++) {
        vmf_debug_fail_alloc_after(fail);
        rc = vmf_knn_classifier_add(m, x2, n2, D, &l2);
        vmf_debug_fail_alloc_after(-1);
        if (rc == VMF_OK)
            break;
        assert_int_equal(rc, VMF_ENOMEM);
        take(m, x, &after);
        assert_same(&before, &after);
        assert_true(fail < 200);
    }
    assert_true(fail >= 4);
    assert_int_equal(vmf_label_table_size(vmf_knn_classifier_labels(m)), 5);
    assert_true(vmf_knn_classifier_n_rows(m) > before.n);
    /* The model that survived failures equals one that never saw them. */
    vmf_knn_classifier *ref = new_model(4, reservoir, 3, D);
    vmf_assert_ok(vmf_knn_classifier_add(ref, x1, n1, D, &l1));
    vmf_assert_ok(vmf_knn_classifier_add(ref, x2, n2, D, &l2));
    take(m, x, &before);
    take(ref, x, &after);
    assert_same(&before, &after);
    int32_t c[N * 2];
    for (fail = 0;; fail++) {
        vmf_debug_fail_alloc_after(fail);
        rc = vmf_knn_classifier_predict_topk(m, x, N, D, 2, c, NULL);
        vmf_debug_fail_alloc_after(-1);
        if (rc == VMF_OK)
            break;
        assert_int_equal(rc, VMF_ENOMEM);
        assert_true(fail < 50);
    }
    assert_true(fail > 0);
    for (fail = 0;; fail++) {
        vmf_knn_classifier *tmp = NULL;
        vmf_debug_fail_alloc_after(fail);
        rc = vmf_knn_classifier_new(NULL, D, &tmp);
        vmf_debug_fail_alloc_after(-1);
        vmf_knn_classifier_free(tmp);
        if (rc == VMF_OK)
            break;
        assert_int_equal(rc, VMF_ENOMEM);
        assert_null(tmp);
    }
    vmf_knn_classifier_free(ref);
    vmf_knn_classifier_free(m);
    free(x);
    free(x1);
    free(x2);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    run_enomem_walk(0);
    run_enomem_walk(20);
}

/* ---- real data ---- */

static void load_npy(const char *name, vmf_array *a)
{
    char path[1024];
    vmf_assert_ok(vmf_npy_read(vmf_test_data_path(name, path, sizeof path), a));
}

static void fmnist_scores(size_t reservoir, double *r1, double *r4)
{
    vmf_array ax, ay, as;
    load_npy("fmnist-cce64.X.npy", &ax);
    load_npy("fmnist-cce64.y.npy", &ay);
    load_npy("fmnist-cce64.split.npy", &as);
    assert_int_equal(ax.dtype, VMF_DTYPE_F32);
    assert_int_equal(ay.dtype, VMF_DTYPE_I32);
    assert_int_equal(as.dtype, VMF_DTYPE_U8);
    size_t n = ax.shape[0], d = ax.shape[1], nte = 0;
    const float *X = ax.data;
    const int32_t *Y = ay.data;
    const uint8_t *S = as.data;
    float *xte = malloc(n * d * sizeof *xte);
    int32_t *yte = malloc(n * sizeof *yte);
    vmf_knn_classifier *m = new_model(10, reservoir, 42, d);
    /* Stream rows one day-sized batch (500 rows) at a time, as the simulator does. */
    for (size_t i = 0; i < n;) {
        if (S[i] != 0) {
            memcpy(xte + nte * d, X + i * d, d * sizeof *xte);
            yte[nte++] = Y[i++];
            continue;
        }
        size_t j = i;
        int64_t lab[500];
        while (j < n && j - i < 500 && S[j] == 0) {
            lab[j - i] = Y[j];
            j++;
        }
        vmf_labels l = {j - i, lab, NULL};
        vmf_assert_ok(vmf_knn_classifier_add(m, X + i * d, j - i, d, &l));
        i = j;
    }
    int32_t *top = malloc(nte * 4 * sizeof *top);
    vmf_assert_ok(vmf_knn_classifier_predict_topk(m, xte, nte, d, 4, top, NULL));
    const vmf_label_table *t = vmf_knn_classifier_labels(m);
    for (size_t i = 0; i < nte * 4; i++)
        top[i] = top[i] < 0 ? -1 : (int32_t)vmf_label_table_int(t, (size_t)top[i]);
    vmf_assert_ok(vmf_topk_macro_recall(yte, nte, 10, top, 4, 1, r1));
    vmf_assert_ok(vmf_topk_macro_recall(yte, nte, 10, top, 4, 4, r4));
    print_message(
        "fmnist-cce64 k-NN (k 10, reservoir %zu, %zu rows kept): top-1 %.4f, top-4 %.4f\n",
        reservoir, vmf_knn_classifier_n_rows(m), *r1, *r4);
    free(top);
    free(xte);
    free(yte);
    vmf_knn_classifier_free(m);
    vmf_array_free(&ax);
    vmf_array_free(&ay);
    vmf_array_free(&as);
}

static void test_fmnist_accuracy(void **state)
{
    (void)state;
    double r1, r4;
    fmnist_scores(0, &r1, &r4); /* measured 0.8718 / 0.9951 */
    assert_true(r1 >= 0.862);
    assert_true(r4 >= 0.985);
    fmnist_scores(150, &r1, &r4); /* balanced reservoirs, measured 0.8892 / 0.9958 */
    assert_true(r1 >= 0.879);
    assert_true(r4 >= 0.985);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed_votes),
        cmocka_unit_test(test_ties_are_deterministic),
        cmocka_unit_test(test_separated_classes_int_labels_and_padding),
        cmocka_unit_test(test_matches_brute_force_across_blocks),
        cmocka_unit_test(test_reservoir),
        cmocka_unit_test(test_reservoir_is_uniform),
        cmocka_unit_test(test_bad_input_changes_nothing),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_fmnist_accuracy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
