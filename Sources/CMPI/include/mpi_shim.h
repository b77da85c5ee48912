#ifndef PRUNE_MPI_SHIM_H
#define PRUNE_MPI_SHIM_H
#include <stddef.h>
#include <stdint.h>

// MPI loaded at run time with dlopen: nothing here needs mpi.h or links libmpi. Open MPI and the
// MPICH family (MPICH, Intel MPI, MVAPICH) are told apart by the symbol `ompi_mpi_comm_world`.
//
// Every function but prune_mpi_load returns 0 (MPI_SUCCESS), an MPI error code (> 0), or one of
// the PRUNE_MPI_ERR_* codes (< 0) below.

/// prune_mpi_load was not called or failed.
#define PRUNE_MPI_ERR_NOT_LOADED (-1)
/// A rank's bytes or the all-gather's total exceed INT_MAX, MPI's count type.
#define PRUNE_MPI_ERR_TOO_LARGE (-2)
/// MPI was finalized in this process; it cannot be initialized again.
#define PRUNE_MPI_ERR_FINALIZED (-3)
/// malloc failed.
#define PRUNE_MPI_ERR_NO_MEMORY (-4)

/// Loads libmpi (RTLD_NOW | RTLD_GLOBAL) and its functions, once. Tries $PRUNE_MPI_LIBRARY alone
/// when it is set, else libmpi.so.40 (Open MPI), libmpi.so.12 (MPICH), libmpi.so. Returns 0, or
/// -1 with a message naming every path tried and its dlerror (or the missing symbol) in `err`.
int prune_mpi_load(char *err, size_t err_len);
/// The path or name that was loaded ("" before a successful prune_mpi_load).
const char *prune_mpi_library_path(void);
/// 1 when the loaded library is Open MPI, 0 for the MPICH ABI.
int prune_mpi_is_open_mpi(void);

/// MPI_Init(NULL, NULL) unless MPI is already initialized.
int prune_mpi_init(void);
int prune_mpi_rank(int *rank);
int prune_mpi_size(int *size);

/// Every rank's byte count (`count` here) into `counts` (one per rank). PRUNE_MPI_ERR_TOO_LARGE on
/// every rank when one rank's count or the total exceeds INT_MAX.
int prune_mpi_allgather_counts(int64_t count, int64_t *counts);
/// Every rank's bytes, in rank order, into `recv` (the sum of `counts` bytes); `counts` from
/// prune_mpi_allgather_counts.
int prune_mpi_allgatherv(const void *bytes, int64_t count, const int64_t *counts, void *recv);

int prune_mpi_barrier(void);
/// MPI_Abort on MPI_COMM_WORLD; returns only if MPI_Abort does.
int prune_mpi_abort(int code);
/// MPI_Finalize unless MPI is not initialized or already finalized.
int prune_mpi_finalize(void);
/// MPI_Get_library_version into `buf` (at most len - 1 characters, NUL-terminated).
int prune_mpi_library_version(char *buf, size_t len);
/// MPI_Error_string of an MPI error code into `buf` ("" when the library has none).
void prune_mpi_error_string(int code, char *buf, size_t len);

#endif
