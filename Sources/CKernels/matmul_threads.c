// A small thread pool for the matmul parts (matmul.c's and qmatmul.c's). The caller publishes a job and
// claims parts itself; the workers claim the rest. A worker spins for a short while after a job (so
// back-to-back products, as in token generation, start at once) and then sleeps on a condition variable.
// Since parts are claimed, not assigned, a worker that is asleep or descheduled (another process on the
// core) costs no more than doing its part on the calling thread. A call made while the pool is busy (from
// another thread, or nested) runs its parts on the calling thread.
#include "CKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define MM_PAUSE() _mm_pause()
#else
#define MM_PAUSE() ((void)0)
#endif

#define MM_MAX_PARTS 64
/// The operation of prune_qmm_run's jobs (beside the PRUNE_MM_OP_* of prune_mm_run).
#define MM_OP_QXWT (-1)
/// How long a worker spins for the next job before it sleeps.
#define MM_SPIN_NS 50000L

typedef struct {
    int op, backend, nparts, acc;
    float *out;
    const float *a, *b;
    long m, n, k;
    const void *qw;  // MM_OP_QXWT: the quantized weight, its row stride in bytes and its ggml type
    long row_bytes;
    int type;
} mm_job;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_flag busy;          // held by the caller running a job
    int nworkers, sleeping;    // sleeping: guarded by lock
    unsigned long gen;         // written by the caller holding busy
    _Atomic unsigned long go;  // generation of the current job
    // Claims of the current job: gen << 16 | nparts << 8 | next part. Parts are claimed with a CAS that
    // checks the generation, so a late worker can never claim a part of a later job.
    _Atomic unsigned long claim;
    _Atomic int done;          // parts of the current job finished
    mm_job job;                // stable while the current job has unfinished parts
} mm_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, ATOMIC_FLAG_INIT};

static void mm_run_part(const mm_job *j, int part) {
    switch (j->op) {
    case PRUNE_MM_OP_XWT: prune_mm_xwt(j->backend, part, j->nparts, j->out, j->a, j->b, j->m, j->n, j->k, j->acc); break;
    case PRUNE_MM_OP_XWT_PACKED:
        prune_mm_xwt_packed(j->backend, part, j->nparts, j->out, j->a, j->b, j->m, j->n, j->k, j->acc);
        break;
    case PRUNE_MM_OP_DYW: prune_mm_dyw(j->backend, part, j->nparts, j->out, j->a, j->b, j->m, j->n, j->k, j->acc); break;
    case PRUNE_MM_OP_DYTX: prune_mm_dytx(j->backend, part, j->nparts, j->out, j->a, j->b, j->m, j->n, j->k, j->acc); break;
    case PRUNE_MM_OP_PACK: prune_mm_pack_wt(j->backend, part, j->nparts, j->out, j->b, j->n, j->k); break;
    case MM_OP_QXWT:
        prune_qmm_xwt(j->backend, part, j->nparts, j->out, j->a, j->qw, j->row_bytes, j->type, j->m, j->n, j->k, j->acc);
        break;
    default: break;
    }
}

/// Claims and runs parts of job generation g until none is left.
static void mm_work(unsigned long g) {
    unsigned long c = atomic_load_explicit(&mm_pool.claim, memory_order_acquire);
    for (;;) {
        if ((c >> 16) != g || (c & 0xFF) >= ((c >> 8) & 0xFF)) return;
        if (!atomic_compare_exchange_weak_explicit(&mm_pool.claim, &c, c + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        // The job has an unfinished part (this one), so mm_pool.job is the job of generation g.
        mm_run_part(&mm_pool.job, (int)(c & 0xFF));
        atomic_fetch_add_explicit(&mm_pool.done, 1, memory_order_acq_rel);
        c = atomic_load_explicit(&mm_pool.claim, memory_order_acquire);
    }
}

static long mm_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *mm_worker_main(void *arg) {
    unsigned long seen = (unsigned long)arg;  // the generation when the worker was started
    for (;;) {
        long start = mm_now_ns();
        unsigned long g;
        for (int spins = 0;; spins++) {
            g = atomic_load_explicit(&mm_pool.go, memory_order_acquire);
            if (g != seen) break;
            if ((spins & 255) == 255 && mm_now_ns() - start > MM_SPIN_NS) {
                pthread_mutex_lock(&mm_pool.lock);
                mm_pool.sleeping++;
                while ((g = atomic_load_explicit(&mm_pool.go, memory_order_acquire)) == seen)
                    pthread_cond_wait(&mm_pool.wake, &mm_pool.lock);
                mm_pool.sleeping--;
                pthread_mutex_unlock(&mm_pool.lock);
                break;
            }
            MM_PAUSE();
        }
        seen = g;
        mm_work(g);
    }
    return NULL;
}

/// Starts workers up to `count` (called holding busy). Returns the number running.
static int mm_grow(int count) {
    while (mm_pool.nworkers < count) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, mm_worker_main, (void *)mm_pool.gen);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        mm_pool.nworkers++;
    }
    return mm_pool.nworkers;
}

/// Runs the parts of `job` on the pool and the calling thread, or all on the calling thread when the pool is busy.
static void mm_run(mm_job job) {
    if (job.nparts < 1) job.nparts = 1;
    if (job.nparts > MM_MAX_PARTS) job.nparts = MM_MAX_PARTS;
    int nparts = job.nparts;
    if (nparts == 1 || atomic_flag_test_and_set_explicit(&mm_pool.busy, memory_order_acquire)) {
        for (int p = 0; p < nparts; p++) mm_run_part(&job, p);
        return;
    }
    mm_grow(nparts - 1);  // with fewer workers than asked for, the caller claims the rest
    unsigned long g = ++mm_pool.gen;
    mm_pool.job = job;
    atomic_store_explicit(&mm_pool.done, 0, memory_order_relaxed);
    atomic_store_explicit(&mm_pool.claim, g << 16 | (unsigned long)nparts << 8, memory_order_release);
    atomic_store_explicit(&mm_pool.go, g, memory_order_release);
    pthread_mutex_lock(&mm_pool.lock);
    if (mm_pool.sleeping) pthread_cond_broadcast(&mm_pool.wake);
    pthread_mutex_unlock(&mm_pool.lock);
    mm_work(g);
    // Parts still running on workers: spin a little, then yield the core (the worker may be waiting for it).
    for (int spins = 0; atomic_load_explicit(&mm_pool.done, memory_order_acquire) < nparts; spins++) {
        if (spins < 4096)
            MM_PAUSE();
        else
            sched_yield();
    }
    atomic_flag_clear_explicit(&mm_pool.busy, memory_order_release);
}

void prune_mm_run(int op, int backend, int nparts, float *out, const float *a, const float *b, long m, long n, long k,
                  int acc) {
    mm_run((mm_job){op, backend, nparts, acc, out, a, b, m, n, k});
}

void prune_qmm_run(int backend, int nparts, float *y, const float *x, const void *w, long row_bytes, int type, long m,
                   long n, long k, int acc) {
    mm_run((mm_job){.op = MM_OP_QXWT, .backend = backend, .nparts = nparts, .acc = acc, .out = y, .a = x, .m = m,
                    .n = n, .k = k, .qw = w, .row_bytes = row_bytes, .type = type});
}
