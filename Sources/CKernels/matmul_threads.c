// A small thread pool for the matmul parts: nparts − 1 workers, each with a fixed part, that spin for a
// short while after a job (so back-to-back products, as in token generation, start at once) and then
// sleep on a condition variable. The caller runs part 0. A call made while the pool is busy (from
// another thread, or nested) runs its parts on the calling thread.
#include "CKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define MM_PAUSE() _mm_pause()
#else
#define MM_PAUSE() ((void)0)
#endif

#define MM_MAX_WORKERS 63
/// How long a worker spins for the next job before it sleeps.
#define MM_SPIN_NS 100000L

typedef struct {
    int op, backend, nparts, acc;
    float *out;
    const float *a, *b;
    long m, n, k;
} mm_job;

typedef struct {
    pthread_t thread;
    int index;
    _Atomic unsigned long go;    // generation of the job to run
    _Atomic unsigned long done;  // generation of the last job run
    int sleeping;                // guarded by mm_pool.lock
} mm_worker;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_flag busy;
    int nworkers;
    unsigned long gen;
    mm_job job;
    mm_worker workers[MM_MAX_WORKERS];
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
    default: break;
    }
}

static long mm_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *mm_worker_main(void *arg) {
    mm_worker *w = arg;
    unsigned long seen = atomic_load_explicit(&w->done, memory_order_acquire);  // set before the thread started
    for (;;) {
        long start = mm_now_ns();
        unsigned long g;
        for (int spins = 0;; spins++) {
            g = atomic_load_explicit(&w->go, memory_order_acquire);
            if (g != seen) break;
            if ((spins & 255) == 255 && mm_now_ns() - start > MM_SPIN_NS) {
                pthread_mutex_lock(&mm_pool.lock);
                w->sleeping = 1;
                while ((g = atomic_load_explicit(&w->go, memory_order_acquire)) == seen)
                    pthread_cond_wait(&mm_pool.wake, &mm_pool.lock);
                w->sleeping = 0;
                pthread_mutex_unlock(&mm_pool.lock);
                break;
            }
            MM_PAUSE();
        }
        seen = g;
        if (w->index < mm_pool.job.nparts) mm_run_part(&mm_pool.job, w->index);
        atomic_store_explicit(&w->done, g, memory_order_release);
    }
    return NULL;
}

/// Starts workers up to `count` (called with the pool held). Returns the number running.
static int mm_grow(int count) {
    if (count > MM_MAX_WORKERS) count = MM_MAX_WORKERS;
    while (mm_pool.nworkers < count) {
        mm_worker *w = &mm_pool.workers[mm_pool.nworkers];
        w->index = mm_pool.nworkers + 1;
        atomic_store(&w->go, mm_pool.gen);
        atomic_store(&w->done, mm_pool.gen);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&w->thread, &attr, mm_worker_main, w);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        mm_pool.nworkers++;
    }
    return mm_pool.nworkers;
}

void prune_mm_run(int op, int backend, int nparts, float *out, const float *a, const float *b, long m, long n, long k,
                  int acc) {
    mm_job job = {op, backend, nparts < 1 ? 1 : nparts, acc, out, a, b, m, n, k};
    if (job.nparts == 1 || atomic_flag_test_and_set_explicit(&mm_pool.busy, memory_order_acquire)) {
        for (int p = 0; p < job.nparts; p++) mm_run_part(&job, p);
        return;
    }
    int workers = mm_grow(job.nparts - 1);
    if (workers < job.nparts - 1) {  // could not start enough threads: fewer, larger parts
        job.nparts = workers + 1;
    }
    mm_pool.job = job;
    unsigned long g = ++mm_pool.gen;
    int used = job.nparts - 1;
    for (int i = 0; i < used; i++) atomic_store_explicit(&mm_pool.workers[i].go, g, memory_order_release);
    pthread_mutex_lock(&mm_pool.lock);
    int anyAsleep = 0;
    for (int i = 0; i < used; i++) anyAsleep |= mm_pool.workers[i].sleeping;
    if (anyAsleep) pthread_cond_broadcast(&mm_pool.wake);
    pthread_mutex_unlock(&mm_pool.lock);
    mm_run_part(&job, 0);
    for (int i = 0; i < used; i++)
        while (atomic_load_explicit(&mm_pool.workers[i].done, memory_order_acquire) != g) MM_PAUSE();
    atomic_flag_clear_explicit(&mm_pool.busy, memory_order_release);
}
