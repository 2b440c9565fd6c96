/*
 * vmfmm_mpi.h - the few collectives the streaming fit (vmfmm_stream.c) needs,
 * over Open MPI when the tool was built with it (VMF_HAVE_MPI) and launched
 * by mpirun, or trivially for one process otherwise. Nothing else in the
 * tool sees MPI, and core never does.
 *
 * Every function is collective: all ranks call it in the same order. Errors
 * are exchanged through vmfmm_comm_check rather than by aborting, so a rank
 * that fails (say, cannot read its shard) makes every rank stop with a clear
 * message instead of leaving the others waiting.
 */
#ifndef VMFMM_MPI_H
#define VMFMM_MPI_H

#include <stddef.h>
#include <stdint.h>

typedef struct vmfmm_comm {
    int rank, size;
    int mpi; /* MPI_Init was called here */
} vmfmm_comm;

/*
 * Joins the MPI job when the process was started by an MPI launcher (Open
 * MPI's OMPI_COMM_WORLD_SIZE, or PMI/PMIx variables) and the tool has MPI;
 * otherwise a communicator of one. Returns 0, or -1 with a message in err.
 */
int vmfmm_comm_init(vmfmm_comm *c, char *err, size_t errlen);
void vmfmm_comm_finalize(vmfmm_comm *c);

/* Non-zero when the environment shows an MPI launcher with more than one process. */
int vmfmm_comm_launched_parallel(void);

/* Element-wise int64 sum across ranks, in place (exact, so order-free). */
int vmfmm_comm_sum_i64(vmfmm_comm *c, int64_t *buf, size_t n);

/*
 * Agreement on failure: every rank passes its exit code (0 = fine). Returns
 * the number of failed ranks; *who receives the failed rank when exactly
 * one failed (else -1) and *code the exit code they share (74 when they
 * differ). Returns -1 when the collective itself fails. The three words
 * this sums may also ride along another sum: see vmfmm_comm_status_*.
 */
int vmfmm_comm_check(vmfmm_comm *c, int code, int *who, int *agreed);

/* The status words of vmfmm_comm_check, to append to a larger sum. */
#define VMFMM_STATUS_WORDS 3
void vmfmm_comm_status_set(const vmfmm_comm *c, int code, int64_t *w);
int vmfmm_comm_status_get(const int64_t *w, int *who, int *agreed);

/* Gathers `bytes` from every rank into recv [size][bytes], rank order. */
int vmfmm_comm_allgather(vmfmm_comm *c, const void *send, size_t bytes, void *recv);

/*
 * Gathers a variable number of bytes: counts [size] receives each rank's
 * byte count; *recv is malloc'ed (caller frees) with the blocks in rank order.
 */
int vmfmm_comm_allgatherv(vmfmm_comm *c, const void *send, size_t bytes, void **recv,
                          size_t *counts);

/* Human-readable name of the transport ("Open MPI 4.1.4" or "none"). */
const char *vmfmm_comm_name(const vmfmm_comm *c);

#endif
