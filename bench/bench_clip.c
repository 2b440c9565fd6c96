/*
 * bench_clip.c - CLIP embedding throughput against its FLOP floor.
 *
 * The floor of a batch is the flops of its matrix products (patch
 * embedding, q/k/v, attention scores and mixing, output projection, MLP,
 * final projection) divided by the machine's SGEMM peak, measured in the
 * same run as the best GFLOP/s of the model's own GEMM shapes and a square
 * 1024³ product. The ratio (measured time / floor) says how far layer
 * norms, softmax, activations and small attention GEMMs keep us from pure
 * GEMM speed. The ratio is computed on process CPU seconds (all BLAS
 * threads), which a busy machine disturbs least, and also on wall time;
 * throughputs are per wall second. Set OPENBLAS_NUM_THREADS (printed) to
 * choose the threads.
 *
 * Models: the tiny test shape and a random-weight model of ViT-B/32's exact
 * shapes (built here, no file), image batches of 32 and text batches of 32
 * at full context.
 *
 *   vmf_bench_clip [repeats]     (default 3)
 */
#include "clip_internal.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best CPU time and best wall time of the runs so far. */
typedef struct timing {
    double cpu, wall;
} timing;

static void timing_add(timing *t, double cpu, double wall)
{
    t->cpu = cpu < t->cpu ? cpu : t->cpu;
    t->wall = wall < t->wall ? wall : t->wall;
}

/* Best GFLOP/s of C [m][n] = A [m][k] Bᵀ over a few runs, per CPU second and per wall second. */
static double sgemm_gflops(size_t m, size_t n, size_t k, double *wall_gflops)
{
    float *a = malloc(m * k * sizeof *a), *b = malloc(n * k * sizeof *b),
          *c = malloc(m * n * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < n * k; i++)
        b[i] = (float)(i % 5) * 0.1f;
    timing best = {1e30, 1e30};
    for (int r = 0; r < 4; r++) {
        double t0 = cpu_now(), w0 = wall_now();
        vmf__clip_sgemm(0, 1, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        timing_add(&best, cpu_now() - t0, wall_now() - w0);
    }
    double flops = 2.0 * (double)m * (double)n * (double)k;
    *wall_gflops = flops / best.wall / 1e9;
    free(a);
    free(b);
    free(c);
    return flops / best.cpu / 1e9;
}

static void report(const char *name, const char *what, double count, double flops_each, timing t,
                   double peak, double wall_peak)
{
    double floor_cpu = count * flops_each / (peak * 1e9);
    double floor_wall = count * flops_each / (wall_peak * 1e9);
    printf("%-9s %-6s batch %.0f: %9.1f %s/s (wall)  %7.3f GFLOP each  floor %.4f s  "
           "measured %.4f s  ratio %.2f (CPU time; wall %.2f)\n",
           name, what, count, count / t.wall, what, flops_each / 1e9, floor_cpu, t.cpu,
           t.cpu / floor_cpu, t.wall / floor_wall);
}

static void run_model(const char *name, const vmf__clip_config *cfg, double peak, double wall_peak,
                      int repeats)
{
    vmf_clip *m = NULL;
    if (vmf__clip_random(cfg, 42, &m) != VMF_OK) {
        fprintf(stderr, "%s: %s\n", name, vmf_clip_last_error());
        exit(1);
    }
    const size_t batch = 32, S = cfg->image, L = cfg->context;
    float *pix = malloc(batch * 3 * S * S * sizeof *pix),
          *out = malloc(batch * cfg->proj * sizeof *out);
    int32_t *ids = malloc(batch * L * sizeof *ids);
    size_t *lens = malloc(batch * sizeof *lens);
    if (!pix || !out || !ids || !lens) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < batch * 3 * S * S; i++)
        pix[i] = (float)((double)((i * 2654435761u) % 1000) / 500.0 - 1.0);
    for (size_t b = 0; b < batch; b++) {
        lens[b] = L;
        ids[b * L] = (int32_t)cfg->vocab - 2;
        for (size_t j = 1; j + 1 < L; j++)
            ids[b * L + j] = (int32_t)((b * 131 + j * 17) % (cfg->vocab - 2));
        ids[b * L + L - 1] = (int32_t)cfg->vocab - 1;
    }
    /* Images. */
    vmf_clip_embed_pixels(m, pix, batch, out); /* warm-up */
    timing t = {1e30, 1e30};
    for (int r = 0; r < repeats; r++) {
        double t0 = cpu_now(), w0 = wall_now();
        if (vmf_clip_embed_pixels(m, pix, batch, out) != VMF_OK) {
            fprintf(stderr, "%s\n", vmf_clip_last_error());
            exit(1);
        }
        timing_add(&t, cpu_now() - t0, wall_now() - w0);
    }
    report(name, "images", (double)batch, vmf__clip_image_flops(m), t, peak, wall_peak);
    /* Texts at full context. */
    vmf__clip_text_forward(m, ids, lens, batch, out);
    t = (timing){1e30, 1e30};
    for (int r = 0; r < repeats; r++) {
        double t0 = cpu_now(), w0 = wall_now();
        if (vmf__clip_text_forward(m, ids, lens, batch, out) != VMF_OK) {
            fprintf(stderr, "%s\n", vmf_clip_last_error());
            exit(1);
        }
        timing_add(&t, cpu_now() - t0, wall_now() - w0);
    }
    report(name, "texts", (double)batch, vmf__clip_text_flops(m, L), t, peak, wall_peak);
    free(pix);
    free(out);
    free(ids);
    free(lens);
    vmf_clip_free(m);
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 3;
    if (repeats < 1)
        repeats = 1;
    const vmf__clip_config tiny = {.vocab = 740,
                                   .context = 16,
                                   .text_width = 64,
                                   .text_inter = 256,
                                   .text_heads = 4,
                                   .text_layers = 2,
                                   .image = 32,
                                   .patch = 8,
                                   .vision_width = 48,
                                   .vision_inter = 192,
                                   .vision_heads = 4,
                                   .vision_layers = 2,
                                   .proj = 32,
                                   .text_eps = 1e-5,
                                   .vision_eps = 1e-5};
    const vmf__clip_config b32 = {.vocab = 49408,
                                  .context = 77,
                                  .text_width = 512,
                                  .text_inter = 2048,
                                  .text_heads = 8,
                                  .text_layers = 12,
                                  .image = 224,
                                  .patch = 32,
                                  .vision_width = 768,
                                  .vision_inter = 3072,
                                  .vision_heads = 12,
                                  .vision_layers = 12,
                                  .proj = 512,
                                  .text_eps = 1e-5,
                                  .vision_eps = 1e-5};
    /* The SGEMM peak: the best of ViT-B/32's main shapes at batch 32 (50 tokens each) and 1024³. */
    const size_t shapes[][3] = {{1600, 2304, 768},
                                {1600, 768, 768},
                                {1600, 3072, 768},
                                {1600, 768, 3072},
                                {1024, 1024, 1024}};
    double peak = 0, wall_peak = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        double gw, g = sgemm_gflops(shapes[i][0], shapes[i][1], shapes[i][2], &gw);
        printf("sgemm %4zu x %4zu x %4zu: %6.1f GFLOP/CPU-s  %6.1f GFLOP/s wall\n", shapes[i][0],
               shapes[i][1], shapes[i][2], g, gw);
        peak = g > peak ? g : peak;
        wall_peak = gw > wall_peak ? gw : wall_peak;
    }
    printf("SGEMM peak %.1f GFLOP per CPU second, %.1f GFLOP/s wall (OpenBLAS threads %d)\n", peak,
           wall_peak, openblas_get_num_threads());
    run_model("tiny", &tiny, peak, wall_peak, repeats);
    run_model("ViT-B/32", &b32, peak, wall_peak, repeats);
    return 0;
}
