// MPI through dlopen: the few MPI types and constants declared here, no mpi.h, no libmpi at link
// time. Open MPI's handles are the addresses of global objects (MPI_COMM_WORLD is
// &ompi_mpi_comm_world); the MPICH ABI's are int constants. Functions that take handles are
// called through the function-pointer type of the loaded library's ABI.
#include "mpi_shim.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *ompi_h;
typedef int mpich_h;

#define MPICH_COMM_WORLD ((mpich_h)0x44000000)
#define MPICH_BYTE ((mpich_h)0x4c00010d)
#define MPICH_INT ((mpich_h)0x4c000405)

/// Large enough for MPI_MAX_LIBRARY_VERSION_STRING (Open MPI 256, MPICH 8192).
#define VERSION_MAX 8192
/// Large enough for MPI_MAX_ERROR_STRING (Open MPI 256, MPICH 1024).
#define ERROR_MAX 1024

typedef int (*ompi_comm_int_fn)(ompi_h, int *);
typedef int (*mpich_comm_int_fn)(mpich_h, int *);
typedef int (*ompi_comm_fn)(ompi_h);
typedef int (*mpich_comm_fn)(mpich_h);
typedef int (*ompi_abort_fn)(ompi_h, int);
typedef int (*mpich_abort_fn)(mpich_h, int);
typedef int (*ompi_allgather_fn)(const void *, int, ompi_h, void *, int, ompi_h, ompi_h);
typedef int (*mpich_allgather_fn)(const void *, int, mpich_h, void *, int, mpich_h, mpich_h);
typedef int (*ompi_allgatherv_fn)(const void *, int, ompi_h, void *, const int *, const int *, ompi_h, ompi_h);
typedef int (*mpich_allgatherv_fn)(const void *, int, mpich_h, void *, const int *, const int *, mpich_h, mpich_h);

static struct {
    int loaded, ompi;
    char path[1024];
    ompi_h comm_world, byte, int_type; // Open MPI only
    int (*initialized)(int *);
    int (*init)(int *, char ***);
    int (*finalized)(int *);
    int (*finalize)(void);
    int (*library_version)(char *, int *);
    int (*error_string)(int, char *, int *); // optional
    void *comm_rank, *comm_size, *allgather, *allgatherv, *barrier, *abort; // take handles
} mpi;

static const char *const default_names[] = {
#ifdef __APPLE__
    "libmpi.40.dylib", "libmpi.12.dylib", "libmpi.dylib",
#else
    "libmpi.so.40", "libmpi.so.12", "libmpi.so",
#endif
};

/// Appends printf-formatted text to the NUL-terminated `buf`.
static void append(char *buf, size_t len, const char *fmt, ...) {
    size_t used = strnlen(buf, len);
    if (used + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

/// dlopen of `name`; on failure appends "name: dlerror" to `err` (dlerror alone when it names it).
static void *open_library(const char *name, char *err, size_t len) {
    void *h = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (h) return h;
    const char *e = dlerror();
    if (!e) e = "unknown dlopen error";
    const char *sep = strnlen(err, len) ? "; " : "";
    if (strstr(e, name)) append(err, len, "%s%s", sep, e);
    else append(err, len, "%s%s: %s", sep, name, e);
    return NULL;
}

/// dlsym of `symbol`; when absent appends why to `err` and returns NULL.
static void *symbol(void *h, const char *name, const char *symbol_name, char *err, size_t len) {
    void *p = dlsym(h, symbol_name);
    if (!p) append(err, len, "%s was loaded but has no %s, so it is not an MPI library", name, symbol_name);
    return p;
}

/// Resolves every function and, for Open MPI, the handles. Returns 0 or -1 with `err` filled.
static int resolve(void *h, const char *name, char *err, size_t len) {
    void **slots[] = {
        (void **)&mpi.initialized, (void **)&mpi.init, (void **)&mpi.finalized, (void **)&mpi.finalize,
        (void **)&mpi.library_version, &mpi.comm_rank, &mpi.comm_size, &mpi.allgather,
        &mpi.allgatherv, &mpi.barrier, &mpi.abort,
    };
    const char *names[] = {
        "MPI_Initialized", "MPI_Init", "MPI_Finalized", "MPI_Finalize", "MPI_Get_library_version",
        "MPI_Comm_rank", "MPI_Comm_size", "MPI_Allgather", "MPI_Allgatherv", "MPI_Barrier", "MPI_Abort",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!(*slots[i] = symbol(h, name, names[i], err, len))) return -1;
    *(void **)&mpi.error_string = dlsym(h, "MPI_Error_string");
    mpi.comm_world = dlsym(h, "ompi_mpi_comm_world");
    mpi.ompi = mpi.comm_world != NULL;
    if (!mpi.ompi) return 0;
    if (!(mpi.byte = symbol(h, name, "ompi_mpi_byte", err, len))) return -1;
    if (!(mpi.int_type = symbol(h, name, "ompi_mpi_int", err, len))) return -1;
    return 0;
}

int prune_mpi_load(char *err, size_t err_len) {
    if (err_len) err[0] = 0;
    if (mpi.loaded) return 0;
    const char *env = getenv("PRUNE_MPI_LIBRARY");
    const char *name = NULL;
    void *h = NULL;
    if (env && *env) {
        if ((h = open_library(env, err, err_len))) name = env;
    } else {
        for (size_t i = 0; !h && i < sizeof(default_names) / sizeof(default_names[0]); i++)
            if ((h = open_library(default_names[i], err, err_len))) name = default_names[i];
    }
    if (!h) return -1;
    if (err_len) err[0] = 0;
    if (resolve(h, name, err, err_len) != 0) {
        dlclose(h);
        return -1;
    }
    snprintf(mpi.path, sizeof(mpi.path), "%s", name);
    mpi.loaded = 1;
    return 0;
}

const char *prune_mpi_library_path(void) { return mpi.path; }

int prune_mpi_is_open_mpi(void) { return mpi.ompi; }

int prune_mpi_init(void) {
    if (!mpi.loaded) return PRUNE_MPI_ERR_NOT_LOADED;
    int flag = 0, rc;
    if ((rc = mpi.finalized(&flag))) return rc;
    if (flag) return PRUNE_MPI_ERR_FINALIZED;
    if ((rc = mpi.initialized(&flag))) return rc;
    return flag ? 0 : mpi.init(NULL, NULL);
}

/// MPI_Comm_rank or MPI_Comm_size (`fn`) of MPI_COMM_WORLD.
static int comm_query(void *fn, int *out) {
    if (!mpi.loaded) return PRUNE_MPI_ERR_NOT_LOADED;
    if (mpi.ompi) return ((ompi_comm_int_fn)fn)(mpi.comm_world, out);
    return ((mpich_comm_int_fn)fn)(MPICH_COMM_WORLD, out);
}

int prune_mpi_rank(int *rank) { return comm_query(mpi.comm_rank, rank); }

int prune_mpi_size(int *size) { return comm_query(mpi.comm_size, size); }

/// MPI_Allgather of one int per rank on MPI_COMM_WORLD.
static int allgather_int(int mine, int *all) {
    if (mpi.ompi)
        return ((ompi_allgather_fn)mpi.allgather)(&mine, 1, mpi.int_type, all, 1, mpi.int_type, mpi.comm_world);
    return ((mpich_allgather_fn)mpi.allgather)(&mine, 1, MPICH_INT, all, 1, MPICH_INT, MPICH_COMM_WORLD);
}

int prune_mpi_allgather_counts(int64_t count, int64_t *counts) {
    int size, rc;
    if ((rc = prune_mpi_size(&size))) return rc;
    int *all = malloc(sizeof(int) * (size_t)size);
    if (!all) return PRUNE_MPI_ERR_NO_MEMORY;
    // A count MPI cannot send goes as -1, so that every rank sees it and fails together.
    int mine = count < 0 || count > INT_MAX ? -1 : (int)count;
    if ((rc = allgather_int(mine, all)) == 0) {
        int64_t total = 0;
        for (int i = 0; i < size; i++) {
            counts[i] = all[i];
            total += all[i] < 0 ? (int64_t)INT_MAX + 1 : all[i];
        }
        if (total > INT_MAX) rc = PRUNE_MPI_ERR_TOO_LARGE;
    }
    free(all);
    return rc;
}

/// MPI_Allgatherv of bytes on MPI_COMM_WORLD. NULL buffers (empty Swift arrays) become a valid
/// address, which MPI's argument checks accept with count 0.
static int allgatherv_bytes(const void *bytes, int count, void *recv, const int *counts, const int *displs) {
    static char empty;
    if (!bytes) bytes = &empty;
    if (!recv) recv = &empty;
    if (mpi.ompi)
        return ((ompi_allgatherv_fn)mpi.allgatherv)(bytes, count, mpi.byte, recv, counts, displs, mpi.byte, mpi.comm_world);
    return ((mpich_allgatherv_fn)mpi.allgatherv)(bytes, count, MPICH_BYTE, recv, counts, displs, MPICH_BYTE, MPICH_COMM_WORLD);
}

int prune_mpi_allgatherv(const void *bytes, int64_t count, const int64_t *counts, void *recv) {
    int size, rc;
    if ((rc = prune_mpi_size(&size))) return rc;
    int *c = malloc(2 * sizeof(int) * (size_t)size);
    if (!c) return PRUNE_MPI_ERR_NO_MEMORY;
    int *displs = c + size;
    int64_t offset = 0;
    for (int i = 0; i < size; i++) {
        if (counts[i] < 0 || offset + counts[i] > INT_MAX) {
            free(c);
            return PRUNE_MPI_ERR_TOO_LARGE;
        }
        c[i] = (int)counts[i];
        displs[i] = (int)offset;
        offset += counts[i];
    }
    rc = count > INT_MAX ? PRUNE_MPI_ERR_TOO_LARGE : allgatherv_bytes(bytes, (int)count, recv, c, displs);
    free(c);
    return rc;
}

int prune_mpi_barrier(void) {
    if (!mpi.loaded) return PRUNE_MPI_ERR_NOT_LOADED;
    if (mpi.ompi) return ((ompi_comm_fn)mpi.barrier)(mpi.comm_world);
    return ((mpich_comm_fn)mpi.barrier)(MPICH_COMM_WORLD);
}

int prune_mpi_abort(int code) {
    if (!mpi.loaded) return PRUNE_MPI_ERR_NOT_LOADED;
    if (mpi.ompi) return ((ompi_abort_fn)mpi.abort)(mpi.comm_world, code);
    return ((mpich_abort_fn)mpi.abort)(MPICH_COMM_WORLD, code);
}

int prune_mpi_finalize(void) {
    if (!mpi.loaded) return PRUNE_MPI_ERR_NOT_LOADED;
    int initialized = 0, finalized = 0, rc;
    if ((rc = mpi.initialized(&initialized))) return rc;
    if ((rc = mpi.finalized(&finalized))) return rc;
    return initialized && !finalized ? mpi.finalize() : 0;
}

int prune_mpi_library_version(char *buf, size_t len) {
    if (len) buf[0] = 0;
    if (!mpi.loaded) return PRUNE_MPI_ERR_NOT_LOADED;
    char version[VERSION_MAX] = {0};
    int n = 0, rc = mpi.library_version(version, &n);
    if (rc == 0 && len) snprintf(buf, len, "%.*s", n < 0 ? 0 : n, version);
    return rc;
}

void prune_mpi_error_string(int code, char *buf, size_t len) {
    if (len) buf[0] = 0;
    if (!mpi.loaded || !mpi.error_string || !len) return;
    char text[ERROR_MAX] = {0};
    int n = 0;
    if (mpi.error_string(code, text, &n) == 0) snprintf(buf, len, "%.*s", n < 0 ? 0 : n, text);
}
