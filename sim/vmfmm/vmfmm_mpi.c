/*
 * vmfmm_mpi.c - the collectives of vmfmm_mpi.h over MPI (built with
 * VMF_HAVE_MPI) or for a single process.
 *
 * Reduction order: the only reduction that carries model numbers is
 * vmfmm_comm_sum_i64, an MPI_Allreduce with MPI_SUM on MPI_INT64_T of the
 * fixed-point words of vmfmm/suffstats.h. Integer addition is associative
 * and commutative, so whatever tree or ring Open MPI picks (it may change
 * with message size, rank count or tuning), every rank receives the same,
 * exact sum, and the sum does not depend on timing.
 *
 * Large messages go in pieces of at most 2^28 elements, below MPI's int
 * counts.
 */
#include "vmfmm_mpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef VMF_HAVE_MPI
#include <mpi.h>
#endif

#define PIECE ((size_t)1 << 28)

int vmfmm_comm_launched_parallel(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 1)
            return 1;
    }
    return 0;
}

static int launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int vmfmm_comm_init(vmfmm_comm *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->size = 1;
    if (!launched())
        return 0;
#ifdef VMF_HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
            snprintf(err, errlen, "MPI_Init failed");
            return -1;
        }
        c->mpi = 1;
    }
    /* Errors come back as codes, so a failed collective is reported, not fatal. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    return 0;
#else
    if (vmfmm_comm_launched_parallel()) {
        snprintf(err, errlen,
                 "started by an MPI launcher with several processes, but this vmfmm was built "
                 "without MPI (install libopenmpi-dev and rebuild; see README)");
        return -1;
    }
    return 0;
#endif
}

void vmfmm_comm_finalize(vmfmm_comm *c)
{
#ifdef VMF_HAVE_MPI
    if (c->mpi)
        MPI_Finalize();
#endif
    c->mpi = 0;
}

const char *vmfmm_comm_name(const vmfmm_comm *c)
{
#ifdef VMF_HAVE_MPI
    if (c->size > 1 || c->mpi) {
        static char name[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        if (name[0] == '\0' && MPI_Get_library_version(name, &len) == MPI_SUCCESS) {
            char *nl = strpbrk(name, ",\n");
            if (nl)
                *nl = '\0';
        }
        return name;
    }
#endif
    (void)c;
    return "none";
}

int vmfmm_comm_sum_i64(vmfmm_comm *c, int64_t *buf, size_t n)
{
    if (c->size == 1)
        return 0;
#ifdef VMF_HAVE_MPI
    for (size_t i = 0; i < n; i += PIECE) {
        size_t now = n - i < PIECE ? n - i : PIECE;
        if (MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)now, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD) !=
            MPI_SUCCESS)
            return -1;
    }
    return 0;
#else
    (void)buf;
    (void)n;
    return -1;
#endif
}

void vmfmm_comm_status_set(const vmfmm_comm *c, int code, int64_t *w)
{
    w[0] = code ? 1 : 0;
    w[1] = code ? (int64_t)c->rank + 1 : 0;
    w[2] = code;
}

int vmfmm_comm_status_get(const int64_t *w, int *who, int *agreed)
{
    *who = w[0] == 1 ? (int)(w[1] - 1) : -1;
    *agreed = 0;
    if (w[0] > 0)
        *agreed = w[2] % w[0] == 0 ? (int)(w[2] / w[0]) : 74;
    return (int)w[0];
}

int vmfmm_comm_check(vmfmm_comm *c, int code, int *who, int *agreed)
{
    int64_t w[VMFMM_STATUS_WORDS];
    vmfmm_comm_status_set(c, code, w);
    if (vmfmm_comm_sum_i64(c, w, VMFMM_STATUS_WORDS) != 0)
        return -1;
    return vmfmm_comm_status_get(w, who, agreed);
}

int vmfmm_comm_allgather(vmfmm_comm *c, const void *send, size_t bytes, void *recv)
{
    if (c->size == 1) {
        memcpy(recv, send, bytes);
        return 0;
    }
#ifdef VMF_HAVE_MPI
    if (bytes > PIECE)
        return -1;
    return MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD) ==
                   MPI_SUCCESS
               ? 0
               : -1;
#else
    return -1;
#endif
}

int vmfmm_comm_allgatherv(vmfmm_comm *c, const void *send, size_t bytes, void **recv,
                          size_t *counts)
{
    *recv = NULL;
    uint64_t mine = bytes;
    uint64_t *all = malloc((size_t)c->size * sizeof *all);
    if (!all)
        return -1;
    if (vmfmm_comm_allgather(c, &mine, sizeof mine, all) != 0) {
        free(all);
        return -1;
    }
    size_t total = 0;
    for (int r = 0; r < c->size; r++) {
        counts[r] = (size_t)all[r];
        total += counts[r];
    }
    free(all);
    unsigned char *out = malloc(total ? total : 1);
    if (!out)
        return -1;
    if (c->size == 1) {
        memcpy(out, send, bytes);
        *recv = out;
        return 0;
    }
#ifdef VMF_HAVE_MPI
    int *cnt = malloc((size_t)c->size * sizeof *cnt);
    int *dsp = malloc((size_t)c->size * sizeof *dsp);
    int rc = -1;
    if (cnt && dsp && total < (size_t)1 << 31) {
        size_t off = 0;
        for (int r = 0; r < c->size; r++) {
            cnt[r] = (int)counts[r];
            dsp[r] = (int)off;
            off += counts[r];
        }
        rc = MPI_Allgatherv(send, (int)bytes, MPI_BYTE, out, cnt, dsp, MPI_BYTE, MPI_COMM_WORLD) ==
                     MPI_SUCCESS
                 ? 0
                 : -1;
    }
    free(cnt);
    free(dsp);
    if (rc != 0) {
        free(out);
        return -1;
    }
    *recv = out;
    return 0;
#else
    free(out);
    return -1;
#endif
}
