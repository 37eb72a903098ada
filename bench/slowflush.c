/*
 * slowflush.so: LD_PRELOAD shim for the benchmark cluster (bench/run.sh, BENCH_FLUSH_DELAY_US).
 * Each fdatasync() -- how PostgreSQL flushes WAL with wal_sync_method = fdatasync -- sleeps
 * BENCH_FLUSH_DELAY_US microseconds after the real call, to show how the contenders behave on
 * a disk whose flushes cost what a real disk's do (this VM's cost about 0.2 ms).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int (*real_fdatasync)(int);
static long delay_us = -1;

int fdatasync(int fd) {
    if (!real_fdatasync)
        real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (delay_us < 0) {
        const char *s = getenv("BENCH_FLUSH_DELAY_US");
        delay_us = s ? atol(s) : 0;
    }
    int rc = real_fdatasync(fd);
    if (delay_us > 0) {
        struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
    return rc;
}
