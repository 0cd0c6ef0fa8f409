/* worker.c: the C reader of framering's benchmark suite (bench/, issue 11
 * item 7). The Go coordinator (framering bench) starts it as a reader
 * process of a case whose writer is the Go producer, with
 *
 *   --kind latency|throughput|copyout|idle --transport c-view|c-copy
 *   --wait futex|spin|poll --size WxHxC --index I --dir DIR --ring NAME
 *   --cpu N (-1: no pinning) --duration-ns NS
 *
 * and reads what the Go workers read: it prints "ready" once the ring is
 * open, then one line "result {json}" when the writer is gone or on
 * SIGUSR2/SIGTERM (the same JSON as the Go workers' result: counts, every
 * frame's [seq, latency ns, scheduler delay ns] in "samples", copy-out
 * timings per method in "timings", CPU seconds and context switches).
 *
 * Frames (bench/frame.go): the send time (u64 LE) at 0, the writer's
 * sequence number at 8, then a test-pattern frame (PROTOCOL.md appendix A)
 * stamped with the same number, whose checksum covers a mark (the number's
 * low byte) at the start of every 4 KiB page. A frame is whole if the
 * checksum matches, the pattern's number is the header's and the first
 * mark is its low byte: the Go check, byte for byte.
 *
 * Built by make c (c/build/framering-bench-c) from c/framering.h alone. */
#define FRAMERING_IMPLEMENTATION
#include "../../c/framering.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_HDR 16
#define FIRST_MARK (BENCH_HDR + 16)
#define MARK_EVERY 4096
#define ACK_LINE 64
#define ACK_SIZE (ACK_LINE * 65)
#define WAIT_SLICE_NS 20000000LL /* as the Go bench readers */
#define SPIN_NS 50000000LL
#define COPY_POLL_NS 50000L

static volatile sig_atomic_t stop_flag;
static framering_reader rd;

static void on_stop(int sig) {
    (void)sig;
    stop_flag = 1;
    framering_reader_cancel(&rd); /* async-signal-safe */
}

static uint64_t le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* x86-64 and arm64 Linux are little-endian */
}
static uint32_t le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int verify(const uint8_t *b, uint64_t n) {
    if (n < FIRST_MARK + 16) return 0;
    uint64_t seq = le64(b + 8);
    const uint8_t *pat = b + BENCH_HDR;
    uint64_t pn = n - BENCH_HDR;
    if (le64(pat) != seq || le32(pat + 12) != (uint32_t)pn) return 0;
    if (le32(pat + 8) != framering_crc32c(pat + 16, pn - 16)) return 0;
    return b[FIRST_MARK] == (uint8_t)seq;
}

/* The thread's run-queue wait (ns) from /proc/thread-self/schedstat, or -1. */
static int sched_fd = -1;
static int64_t sched_now(void) {
    if (sched_fd < 0) return -1;
    char buf[128];
    ssize_t n = pread(sched_fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *sp = strchr(buf, ' ');
    if (!sp) return -1;
    return strtoll(sp + 1, NULL, 10);
}

typedef struct {
    int64_t *v;
    size_t n, cap;
} vec;

static void push(vec *a, int64_t x) {
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 4096;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v) {
            fprintf(stderr, "c bench worker: out of memory\n");
            exit(1);
        }
    }
    a->v[a->n++] = x;
}

static void print_vec(const char *name, const vec *a, int stride) {
    printf("\"%s\":[", name);
    for (size_t i = 0; i < a->n; i += stride) {
        if (i) putchar(',');
        if (stride == 3)
            printf("[%lld,%lld,%lld]", (long long)a->v[i], (long long)a->v[i + 1], (long long)a->v[i + 2]);
        else
            printf("%lld", (long long)a->v[i]);
    }
    putchar(']');
}

static void usage_cpu(double *cpu, uint64_t *sw) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    *sw = (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "c bench worker: %s: %s (%s)\n", what, framering_reader_error(&rd), framering_code_name(rc));
    exit(1);
}

int main(int argc, char **argv) {
    const char *kind = "latency", *transport = "c-view", *wait = "futex", *dir = NULL, *ring = "data";
    int index = 0, cpu = -1, w = 0, h = 0, c = 0;
    long long duration = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--kind")) kind = v;
        else if (!strcmp(k, "--transport")) transport = v;
        else if (!strcmp(k, "--wait")) wait = v;
        else if (!strcmp(k, "--size")) {
            if (sscanf(v, "%dx%dx%d", &w, &h, &c) != 3) {
                fprintf(stderr, "c bench worker: --size %s: want WxHxC\n", v);
                return 2;
            }
        } else if (!strcmp(k, "--index")) index = atoi(v);
        else if (!strcmp(k, "--dir")) dir = v;
        else if (!strcmp(k, "--ring")) ring = v;
        else if (!strcmp(k, "--cpu")) cpu = atoi(v);
        else if (!strcmp(k, "--duration-ns")) duration = atoll(v);
        else {
            fprintf(stderr, "c bench worker: unknown flag %s\n", k);
            return 2;
        }
    }
    if (argc % 2 != 1 || index < 0 || index >= 64 || (long long)w * h * c < FIRST_MARK + 16) {
        fprintf(stderr, "c bench worker: bad arguments (see the comment at the top of worker.c)\n");
        return 2;
    }
    int view = !strcmp(transport, "c-view");
    int latency = !strcmp(kind, "latency"), throughput = !strcmp(kind, "throughput");
    int copyout = !strcmp(kind, "copyout"), idle = !strcmp(kind, "idle");
    if (!latency && !throughput && !copyout && !idle) {
        fprintf(stderr, "c bench worker: unknown kind %s\n", kind);
        return 2;
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            fprintf(stderr, "c bench worker: pin to CPU %d: %s\n", cpu, strerror(errno));
            return 1;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    uint8_t *acks = NULL;
    if (latency || copyout) {
        char path[4096];
        snprintf(path, sizeof path, "%s/acks", dir ? dir : "/dev/shm");
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "c bench worker: ack board %s: %s\n", path, strerror(errno));
            return 1;
        }
        acks = mmap(NULL, ACK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (acks == MAP_FAILED) {
            fprintf(stderr, "c bench worker: map the ack board: %s\n", strerror(errno));
            return 1;
        }
    }
    framering_reader_options ro;
    memset(&ro, 0, sizeof ro);
    ro.dir = dir;
    ro.mode = throughput ? FRAMERING_LATEST : FRAMERING_ORDERED;
    ro.start = FRAMERING_START_NEXT;
    if (!idle) ro.wait_slice_ns = WAIT_SLICE_NS; /* idle: the library's defaults, what users get */
    if (!strcmp(wait, "spin")) ro.spin_ns = SPIN_NS;
    int rc = framering_reader_open_wait(&rd, ring, &ro, 30000000000LL);
    if (rc != FRAMERING_OK) die("open", rc);
    sched_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    uint64_t n = (uint64_t)w * h * c;
    uint8_t *buf = malloc(n);
    if (!buf) {
        fprintf(stderr, "c bench worker: out of memory\n");
        return 1;
    }
    memset(buf, 0, n);
    printf("ready\n");
    fflush(stdout);

    vec samples = {0}, t_read = {0}, t_memcpy = {0};
    uint64_t frames = 0, torn = 0, rejected = 0;
    int64_t first = 0, last = 0;
    double cpu0, cpu1;
    uint64_t sw0, sw1;
    int64_t start = framering_now_ns();
    usage_cpu(&cpu0, &sw0);
    framering_frame f;
    if (idle) {
        rc = framering_reader_acquire(&rd, &f, duration);
        if (rc == FRAMERING_OK) {
            framering_reader_release(&rd);
            fprintf(stderr, "c bench worker: idle: a frame arrived on a ring nobody publishes to\n");
            return 1;
        }
    } else {
        for (uint64_t i = 0; !stop_flag;) {
            if (!copyout) sched_yield(); /* a preemption owed after the last frame's check lands here, not below */
            int64_t s0 = sched_now(), d = 0;
            int timed_read = copyout && i % 2 == 0;
            int64_t t0 = framering_now_ns();
            if (copyout) {
                if (timed_read) {
                    rc = framering_reader_read(&rd, buf, n, &f, 0);
                    d = framering_now_ns() - t0;
                } else if ((rc = framering_reader_acquire(&rd, &f, 0)) == FRAMERING_OK) {
                    t0 = framering_now_ns();
                    memcpy(buf, f.pixels, f.len < n ? f.len : n);
                    d = framering_now_ns() - t0;
                    if (framering_reader_release(&rd) != FRAMERING_OK) {
                        rejected++;
                        continue;
                    }
                }
            } else if (view) {
                rc = framering_reader_acquire(&rd, &f, -1);
            } else {
                rc = framering_reader_read(&rd, buf, n, &f, -1);
            }
            int64_t at = framering_now_ns();
            if (rc == FRAMERING_ERR_TIMEOUT && copyout) {
                struct timespec ts = {0, COPY_POLL_NS};
                nanosleep(&ts, NULL);
                continue;
            }
            if (rc == FRAMERING_ERR_CANCELED || rc == FRAMERING_ERR_WRITER_GONE || rc == FRAMERING_ERR_CLOSED) break;
            if (rc != FRAMERING_OK) die("read", rc);
            int64_t sd = s0 < 0 ? -1 : sched_now() - s0;
            const uint8_t *px = (view && !copyout) ? f.pixels : buf;
            uint64_t len = f.len < n ? f.len : n;
            uint64_t seq = len >= 16 ? le64(px + 8) : 0;
            /* Received: the writer prepares its next frame from here on. */
            if (acks) __atomic_store_n((uint64_t *)(acks + ACK_LINE * (index + 1) + 8), seq, __ATOMIC_SEQ_CST);
            int ok = f.len == n && verify(px, len);
            if (view && !copyout && framering_reader_release(&rd) != FRAMERING_OK) {
                rejected++;
                continue;
            }
            i++;
            frames++;
            if (!ok) torn++;
            if (!first) first = at;
            last = at;
            if (copyout) {
                push(timed_read ? &t_read : &t_memcpy, d);
            } else {
                push(&samples, (int64_t)seq);
                push(&samples, at - f.publish_ns);
                push(&samples, sd);
            }
            if (acks) __atomic_store_n((uint64_t *)(acks + ACK_LINE * (index + 1)), seq, __ATOMIC_SEQ_CST);
        }
    }
    int64_t end = framering_now_ns();
    usage_cpu(&cpu1, &sw1);
    printf("result {\"role\":\"reader\",\"index\":%d,\"frames\":%llu,\"torn\":%llu,\"rejected\":%llu,"
           "\"first\":%lld,\"last\":%lld,\"start\":%lld,\"end\":%lld,\"cpu_s\":%.6f,\"switches\":%llu,",
           index, (unsigned long long)frames, (unsigned long long)torn, (unsigned long long)rejected,
           (long long)first, (long long)last, (long long)start, (long long)end, cpu1 - cpu0,
           (unsigned long long)(sw1 - sw0));
    print_vec("samples", &samples, 3);
    printf(",\"timings\":{");
    if (copyout) {
        print_vec("read", &t_read, 1);
        putchar(',');
        print_vec("glibc-memcpy", &t_memcpy, 1);
    }
    printf("}}\n");
    fflush(stdout);
    framering_reader_close(&rd);
    return 0;
}
