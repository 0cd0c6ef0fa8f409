/* Tests of c/framering.h, run by `make test-c` under AddressSanitizer and
 * UndefinedBehaviorSanitizer. Every test runs under an alarm() hang guard;
 * child processes die with the test (PR_SET_PDEATHSIG). No test asserts a
 * time: they assert counts, bytes and error codes.
 *
 * Built a second time with -DFRAMERING_TEST_FORCE_NAMED_TMP, every writer
 * takes the fallback of PROTOCOL.md §7 (a temporary name instead of
 * O_TMPFILE); the leftover check after each test then also proves that no
 * temporary file is left behind.
 *
 * usage: framering_test [-v] [--named-tmp] [TEST-NAME-SUBSTRING] */
#define FRAMERING_IMPLEMENTATION
#define FRAMERING_TEST_HOOKS
#include "../framering.h"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static char dir[256];
static const char *current;
static int failures, verbose;
static long ring_seq;

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "FAIL %s (%s:%d): ", current, __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                                                  \
        fprintf(stderr, "\n");                                                                                         \
        failures++;                                                                                                    \
        return;                                                                                                        \
    } while (0)
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "FAIL %s (%s:%d): %s: ", current, __FILE__, __LINE__, #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
            failures++;                                                                                                \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)
/* CHECK_RC: a call returned the wanted code; show the handle's message if not. */
#define CHECK_RC(got, want, msg)                                                                                       \
    do {                                                                                                               \
        int got_ = (got);                                                                                              \
        if (got_ != (want))                                                                                            \
            FAIL("%s returned %s, want %s: %s", #got, framering_code_name(got_), framering_code_name(want), (msg));    \
    } while (0)
#define CHECK_EQ(a, b)                                                                                                 \
    do {                                                                                                               \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);                                 \
        if (a_ != b_) FAIL("%s == %llu, want %s == %llu", #a, a_, #b, b_);                                             \
    } while (0)
#define CHECK_HAS(msg, sub)                                                                                            \
    do {                                                                                                               \
        if (strstr((msg), (sub)) == NULL) FAIL("message \"%s\" does not say \"%s\"", (msg), (sub));                   \
    } while (0)

static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "FAIL: hang guard: a test ran longer than its alarm\n";
    if (write(2, m, sizeof m - 1) < 0) _exit(3);
    if (write(2, current, strlen(current)) < 0) _exit(3);
    _exit(3);
}

/* A unique ring name per call. */
static const char *ring_name(char *buf, size_t n) {
    snprintf(buf, n, "t%ld-%s", ++ring_seq, current);
    return buf;
}

static void ring_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/framering.%s", dir, name); }

static void unlink_ring(const char *name) {
    char p[512];
    ring_path(p, sizeof p, name);
    unlink(p);
}

static framering_writer_options wopts(uint32_t slots, uint64_t cap) {
    framering_writer_options o;
    memset(&o, 0, sizeof o);
    o.dir = dir;
    o.slots = slots;
    o.max_frame_bytes = cap;
    return o;
}

static framering_reader_options ropts(int mode, int start) {
    framering_reader_options o;
    memset(&o, 0, sizeof o);
    o.dir = dir;
    o.mode = mode;
    o.start = start;
    return o;
}

static framering_frame_info bgr(uint32_t w, uint32_t h) {
    framering_frame_info fi;
    memset(&fi, 0, sizeof fi);
    fi.width = w;
    fi.height = h;
    fi.format = FRAMERING_BGR8;
    return fi;
}

/* publish_pattern publishes n frames of pattern, by loan (odd numbers) and
 * by copy (even), and returns the last frame number or 0 on error. */
static uint64_t publish_pattern(framering_writer *w, framering_frame_info fi, int n) {
    uint64_t len = (uint64_t)fi.width * fi.height * 3, last = 0;
    uint8_t *buf = (uint8_t *)malloc(len);
    for (int i = 0; i < n; i++) {
        uint64_t num = framering_writer_next(w);
        if (num & 1) {
            framering_loan *l;
            if (framering_writer_reserve(w, &fi, &l) != FRAMERING_OK) break;
            framering_pattern_fill(l->pixels, (size_t)l->len, l->number);
            if (framering_writer_commit(w) != FRAMERING_OK) break;
            last = num;
        } else {
            framering_pattern_fill(buf, (size_t)len, num);
            if (framering_writer_publish(w, &fi, buf, (size_t)len, &last) != FRAMERING_OK) break;
        }
    }
    free(buf);
    return last;
}

static int window_ok(const framering_reader_stats *s) {
    return s->delivered + s->lapped + s->skipped + s->overwritten + s->corrupt == s->window_frames;
}

/* A child process that dies with the test. */
static pid_t fork_child(void) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        alarm(0);
    }
    return pid;
}

static int wait_exit(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void pipe_put(int fd) {
    char c = 'x';
    if (write(fd, &c, 1) != 1) _exit(1);
}

static int pipe_get(int fd) {
    char c;
    return read(fd, &c, 1) == 1;
}

/* ---------------------------------------------------------------- tests */

static void test_crc_and_pattern(void) {
    CHECK_EQ(framering_crc32c("123456789", 9), 0xE3069283u);
    CHECK_EQ(fr__crc_sw(0xFFFFFFFFu, (const uint8_t *)"123456789", 9) ^ 0xFFFFFFFFu, 0xE3069283u);
    /* PROTOCOL.md appendix A: the first 32 bytes of frame 1 of 64 bytes
     * (taken from the Go implementation, internal/pattern). */
    static const uint8_t want[32] = {0x01, 0, 0, 0, 0, 0, 0, 0, 0xe1, 0xd7, 0x36, 0x7e, 0x40, 0, 0, 0,
                                     2,    2, 2, 2, 2, 2, 2, 2, 2,    2,    2,    2,    2,    2, 2, 2};
    uint8_t b[64];
    framering_pattern_fill(b, sizeof b, 1);
    CHECK(memcmp(b, want, 32) == 0, "frame 1 of 64 bytes differs from the Go pattern");
    CHECK_EQ(b[48], 4);
    CHECK(framering_pattern_check(b, sizeof b, 1, NULL, 0) == 0, "a filled frame fails its check");
    char why[128];
    CHECK(framering_pattern_check(b, sizeof b, 2, why, sizeof why) != 0, "frame 1 passes as frame 2");
    for (size_t i = 0; i < sizeof b; i++) {
        uint8_t c[64];
        memcpy(c, b, sizeof c);
        c[i] ^= 0x40;
        CHECK(framering_pattern_check(c, sizeof c, 1, why, sizeof why) != 0, "a flipped byte %zu passes", i);
    }
    uint8_t odd[37]; /* a length that is not a multiple of 16 */
    framering_pattern_fill(odd, sizeof odd, 300);
    CHECK_EQ(odd[16], (uint8_t)(1 + 300));
    CHECK(framering_pattern_check(odd, sizeof odd, 300, why, sizeof why) == 0, "%s", why);
}

static void test_geometry(void) {
    framering_geometry g;
    struct {
        uint32_t slots, meta;
        uint64_t cap, off, stride, size;
    } cases[] = {{8, 4096, 6220800, 8192, 6230016, 49844224}, {4, 256, 1000, 4096, 8192, 36864},
                 {8, 0, 921600, 4096, 925696, 7409664}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_RC(framering_geometry_make(cases[i].slots, cases[i].cap, cases[i].meta, &g), FRAMERING_OK, "");
        CHECK_EQ(g.payload_offset, cases[i].off);
        CHECK_EQ(g.slot_stride, cases[i].stride);
        CHECK_EQ(g.file_size, cases[i].size);
    }
    CHECK_RC(framering_geometry_make(3, 100, 0, &g), FRAMERING_ERR_INVALID, "");
    CHECK_RC(framering_geometry_make(1, 100, 0, &g), FRAMERING_ERR_INVALID, "");
    CHECK_RC(framering_geometry_make(131072, 100, 0, &g), FRAMERING_ERR_INVALID, "");
    CHECK_RC(framering_geometry_make(4, 0, 0, &g), FRAMERING_ERR_INVALID, "");
    CHECK_RC(framering_geometry_make(4, ((uint64_t)1 << 34) + 1, 0, &g), FRAMERING_ERR_INVALID, "");
    CHECK_RC(framering_geometry_make(65536, (uint64_t)1 << 34, 0, &g), FRAMERING_ERR_INVALID, "file over 2^40");
}

/* The superblock's static part of a C ring equals internal/layout/testdata/superblock.golden. */
static void test_golden_superblock(void) {
    static const uint8_t golden[64] = {
        0x46, 0x52, 0x4d, 0x52, 0x49, 0x4e, 0x47, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
        0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x15, 0x93, 0x41, 0x79};
    char name[128], path[512];
    ring_name(name, sizeof name);
    ring_path(path, sizeof path, name);
    static framering_writer w;
    framering_writer_options o = wopts(4, 1000);
    o.meta_bytes = 256;
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    uint8_t sb[4096];
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "open %s", path);
    CHECK(pread(fd, sb, sizeof sb, 0) == (ssize_t)sizeof sb, "pread");
    struct stat st;
    fstat(fd, &st);
    close(fd);
    CHECK(memcmp(sb, golden, 64) == 0, "superblock bytes 0..63 differ from the golden file");
    CHECK_EQ(st.st_size, 36864);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(fr__le64(sb + FR__SB_GEN), 1);
    CHECK_EQ(fr__le32(sb + FR__SB_PID), getpid());
    CHECK_EQ(fr__le64(sb + FR__SB_HEAD), 0);
    CHECK_EQ(fr__le32(sb + FR__SB_NOTIFY), 1); /* +1 at takeover */
    for (size_t i = 272; i < sizeof sb; i++) CHECK(sb[i] == 0, "reserved byte %zu is %u", i, sb[i]);
    CHECK_RC(framering_writer_remove(&w), FRAMERING_OK, w.err.msg);
    CHECK(access(path, F_OK) != 0, "remove left %s", path);
}

typedef struct writer_job {
    const char *name;
    int frames;
    uint32_t slots, width, height;
    uint64_t last;
    int rc;
    char msg[FRAMERING_MSG_MAX];
} writer_job;

static void *writer_thread(void *arg) {
    writer_job *j = (writer_job *)arg;
    static framering_writer w;
    framering_writer_options o = wopts(j->slots, (uint64_t)j->width * j->height * 3);
    j->rc = framering_writer_open(&w, j->name, &o);
    if (j->rc != FRAMERING_OK) {
        snprintf(j->msg, sizeof j->msg, "%s", w.err.msg);
        return NULL;
    }
    j->last = publish_pattern(&w, bgr(j->width, j->height), j->frames);
    framering_writer_close(&w);
    return NULL;
}

/* A writer thread laps a slow verifying reader: every accepted frame is
 * checked word by word, nothing torn is accepted, and delivered + dropped
 * == the frames published in the window. */
static void test_threads_ordered_verify(void) {
    char name[128];
    ring_name(name, sizeof name);
    static framering_writer w0;
    framering_writer_options o = wopts(4, 128 * 96 * 3);
    CHECK_RC(framering_writer_open(&w0, name, &o), FRAMERING_OK, w0.err.msg);
    CHECK_RC(framering_writer_close(&w0), FRAMERING_OK, w0.err.msg); /* the ring exists, head 0 */
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEWEST);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    writer_job j = {name, 40000, 2, 128, 96, 0, 0, ""};
    pthread_t t;
    pthread_create(&t, NULL, writer_thread, &j);
    uint64_t bad = 0, got = 0, prev = 0;
    uint8_t *buf = (uint8_t *)malloc(128 * 96 * 3);
    for (;;) {
        framering_frame f;
        int rc = framering_reader_read(&r, buf, 128 * 96 * 3, &f, 20000000000LL);
        if (rc == FRAMERING_ERR_WRITER_GONE) {
            framering_reader_stats s;
            framering_reader_stats_get(&r, &s);
            if (s.last == 40000) break;
            continue; /* before the writer took over */
        }
        if (rc != FRAMERING_OK) {
            fprintf(stderr, "%s\n", r.err.msg);
            break;
        }
        got++;
        if (f.number <= prev) bad++;
        prev = f.number;
        if (framering_pattern_check(f.pixels, (size_t)f.len, f.number, NULL, 0) != 0) bad++;
    }
    pthread_join(t, NULL);
    free(buf);
    CHECK_RC(j.rc, FRAMERING_OK, j.msg);
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    framering_reader_close(&r);
    unlink_ring(name);
    if (verbose)
        fprintf(stderr, "  delivered %llu lapped %llu retries %llu\n", (unsigned long long)s.delivered,
                (unsigned long long)s.lapped, (unsigned long long)s.retries);
    CHECK_EQ(bad, 0);
    CHECK_EQ(s.delivered, got);
    CHECK_EQ(s.window_start, 1);
    CHECK_EQ(s.last, 40000);
    CHECK(window_ok(&s), "delivered + dropped != window frames");
    CHECK_EQ(s.window_frames, 40000);
}

/* child_writer: open ring name, tell the parent, wait for its go, publish
 * frames (forever if n < 0, every pace_us), close. Runs in a child. */
static void child_writer(const char *name, uint32_t slots, uint32_t w, uint32_t h, int n, int pace_us, int ready,
                         int go) {
    static framering_writer wr;
    framering_writer_options o = wopts(slots, (uint64_t)w * h * 3);
    o.heartbeat_ns = 20000000;
    if (framering_writer_open(&wr, name, &o) != FRAMERING_OK) {
        fprintf(stderr, "child writer: %s\n", wr.err.msg);
        _exit(1);
    }
    pipe_put(ready);
    if (go >= 0 && !pipe_get(go)) _exit(1);
    for (int i = 0; n < 0 || i < n; i++) {
        if (publish_pattern(&wr, bgr(w, h), 1) == 0) _exit(1);
        if (pace_us) usleep((useconds_t)pace_us);
    }
    framering_writer_close(&wr);
    _exit(0);
}

/* A writer process and a reader, copy and view: no torn frame accepted,
 * exact accounting over the whole stream. */
static void run_process_verify(int view) {
    char name[128];
    ring_name(name, sizeof name);
    int ready[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0, "pipe");
    const int total = 20000;
    pid_t pid = fork_child();
    if (pid == 0) child_writer(name, 2, 256, 192, total, 0, ready[1], go[0]);
    CHECK(pipe_get(ready[0]), "child writer did not start");
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEWEST);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    pipe_put(go[1]);
    uint64_t bad = 0, got = 0;
    for (;;) {
        framering_frame f;
        int rc = view ? framering_reader_acquire(&r, &f, 20000000000LL)
                      : framering_reader_read(&r, NULL, 0, &f, 20000000000LL);
        if (rc == FRAMERING_ERR_WRITER_GONE) break;
        CHECK_RC(rc, FRAMERING_OK, r.err.msg);
        int ok = framering_pattern_check(f.pixels, (size_t)f.len, f.number, NULL, 0) == 0;
        if (view) {
            rc = framering_reader_release(&r);
            if (rc == FRAMERING_ERR_OVERWRITTEN) continue;
            CHECK_RC(rc, FRAMERING_OK, r.err.msg);
        }
        got++;
        if (!ok) bad++;
    }
    CHECK_EQ(wait_exit(pid), 0);
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    framering_reader_close(&r);
    unlink_ring(name);
    close(ready[0]), close(ready[1]), close(go[0]), close(go[1]);
    if (verbose)
        fprintf(stderr, "  %s: delivered %llu lapped %llu overwritten %llu retries %llu\n", view ? "view" : "copy",
                (unsigned long long)s.delivered, (unsigned long long)s.lapped, (unsigned long long)s.overwritten,
                (unsigned long long)s.retries);
    CHECK_EQ(bad, 0);
    CHECK_EQ(s.delivered, got);
    CHECK_EQ(s.window_start, 1);
    CHECK_EQ(s.last, total);
    CHECK_EQ(s.window_frames, total);
    CHECK(window_ok(&s), "delivered + dropped != window frames");
    CHECK_EQ(s.writer_gone, 1);
    if (!view) CHECK_EQ(s.overwritten, 0);
}

static void test_processes_copy_verify(void) { run_process_verify(0); }
static void test_processes_view_verify(void) { run_process_verify(1); }

/* Lapping counts are exact: a reader 20 frames behind in a 4-slot ring
 * resumes half a ring behind the head. Start positions. */
static void test_lapping_and_start(void) {
    char name[128];
    ring_name(name, sizeof name);
    static framering_writer w;
    framering_writer_options o = wopts(4, 64 * 48 * 3);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEXT);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    CHECK_EQ(publish_pattern(&w, bgr(64, 48), 20), 20);
    framering_frame f;
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 0), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 19); /* 20 - 4/2 + 1 */
    CHECK(framering_pattern_check(f.pixels, (size_t)f.len, 19, NULL, 0) == 0, "frame 19 pattern");
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 0), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 20);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 0), FRAMERING_ERR_TIMEOUT, r.err.msg);
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    CHECK_EQ(s.delivered, 2);
    CHECK_EQ(s.lapped, 18);
    CHECK_EQ(s.window_frames, 20);
    CHECK(window_ok(&s), "accounting");
    framering_reader_close(&r);

    /* Start positions, head 20 in a 4-slot ring. */
    struct {
        int start;
        uint64_t first;
    } cases[] = {{FRAMERING_START_NEWEST, 20}, {FRAMERING_START_OLDEST, 17}, {FRAMERING_START_NEXT, 21}};
    for (int i = 0; i < 3; i++) {
        ro = ropts(FRAMERING_ORDERED, cases[i].start);
        CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
        framering_reader_stats_get(&r, &s);
        CHECK_EQ(s.window_start, cases[i].first);
        int rc = framering_reader_read(&r, NULL, 0, &f, 0);
        if (cases[i].first > 20) {
            CHECK_RC(rc, FRAMERING_ERR_TIMEOUT, r.err.msg);
        } else {
            CHECK_RC(rc, FRAMERING_OK, r.err.msg);
            CHECK_EQ(f.number, cases[i].first);
        }
        framering_reader_close(&r);
    }
    /* A reader of an idle ring with a live writer: timeout, not gone. */
    ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEXT);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 150000000), FRAMERING_ERR_TIMEOUT, r.err.msg);
    CHECK_HAS(r.err.msg, "no frame");
    framering_reader_stats_get(&r, &s);
    CHECK_EQ(s.writer_gone, 0);
    framering_reader_close(&r);
    framering_writer_remove(&w);
}

static void test_latest_mode(void) {
    char name[128];
    ring_name(name, sizeof name);
    static framering_writer w;
    framering_writer_options o = wopts(8, 64 * 48 * 3);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_LATEST, FRAMERING_START_NEXT);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    framering_frame f;
    int batches[] = {10, 3, 1, 20};
    uint64_t want[] = {10, 13, 14, 34};
    for (int i = 0; i < 4; i++) {
        publish_pattern(&w, bgr(64, 48), batches[i]);
        CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 0), FRAMERING_OK, r.err.msg);
        CHECK_EQ(f.number, want[i]);
        CHECK(framering_pattern_check(f.pixels, (size_t)f.len, f.number, NULL, 0) == 0, "pattern");
        CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 0), FRAMERING_ERR_TIMEOUT, r.err.msg);
    }
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    CHECK_EQ(s.delivered, 4);
    CHECK_EQ(s.skipped, 30);
    CHECK_EQ(s.lapped, 0);
    CHECK_EQ(s.window_frames, 34);
    CHECK(window_ok(&s), "accounting");
    framering_reader_close(&r);
    framering_writer_remove(&w);
}

static void test_views(void) {
    char name[128];
    ring_name(name, sizeof name);
    static framering_writer w;
    framering_writer_options o = wopts(4, 64 * 48 * 3);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEXT);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    publish_pattern(&w, bgr(64, 48), 1);
    framering_frame f, g;
    CHECK_RC(framering_reader_acquire(&r, &f, 0), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 1);
    CHECK(framering_pattern_check(f.pixels, (size_t)f.len, 1, NULL, 0) == 0, "view pattern");
    CHECK_RC(framering_reader_read(&r, NULL, 0, &g, 0), FRAMERING_ERR_OUTSTANDING, r.err.msg);
    CHECK_RC(framering_reader_acquire(&r, &g, 0), FRAMERING_ERR_OUTSTANDING, r.err.msg);
    publish_pattern(&w, bgr(64, 48), 4); /* frame 5 reuses frame 1's slot */
    CHECK_RC(framering_reader_release(&r), FRAMERING_ERR_OVERWRITTEN, r.err.msg);
    CHECK_HAS(r.err.msg, "overwritten");
    CHECK_RC(framering_reader_release(&r), FRAMERING_ERR_INVALID, r.err.msg);
    CHECK_RC(framering_reader_acquire(&r, &f, 0), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 2);
    CHECK(framering_pattern_check(f.pixels, (size_t)f.len, 2, NULL, 0) == 0, "view pattern");
    CHECK_RC(framering_reader_release(&r), FRAMERING_OK, r.err.msg);
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    CHECK_EQ(s.overwritten, 1);
    CHECK_EQ(s.delivered, 1);
    CHECK_EQ(s.last, 2);
    CHECK(window_ok(&s), "accounting");
    framering_reader_close(&r);
    framering_writer_remove(&w);
}

static void test_metadata_abort_raw(void) {
    char name[128];
    ring_name(name, sizeof name);
    static framering_writer w;
    framering_writer_options o = wopts(4, 1000);
    o.meta_bytes = 64;
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEXT);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    /* publish by copy with metadata */
    framering_frame_info fi;
    memset(&fi, 0, sizeof fi);
    fi.format = FRAMERING_RAW;
    fi.meta = "hello";
    fi.meta_len = 5;
    fi.capture_ns = 12345;
    uint8_t px[100];
    framering_pattern_fill(px, sizeof px, 1);
    uint64_t n;
    CHECK_RC(framering_writer_publish(&w, &fi, px, sizeof px, &n), FRAMERING_OK, w.err.msg);
    CHECK_EQ(n, 1);
    /* a loan rolled back: the number is reused, readers see nothing */
    framering_loan *l;
    fi.len = 50;
    fi.capture_ns = 0;
    CHECK_RC(framering_writer_reserve(&w, &fi, &l), FRAMERING_OK, w.err.msg);
    CHECK_EQ(l->number, 2);
    CHECK_EQ(l->len, 50);
    CHECK_RC(framering_writer_reserve(&w, &fi, &l), FRAMERING_ERR_OUTSTANDING, w.err.msg);
    framering_writer_abort(&w);
    /* a loan with metadata in place, and a too-long meta_len refused */
    CHECK_RC(framering_writer_reserve(&w, &fi, &l), FRAMERING_OK, w.err.msg);
    CHECK_EQ(l->number, 2);
    CHECK_EQ(l->meta_cap, 64);
    framering_pattern_fill(l->pixels, 50, 2);
    memcpy(l->meta, "in place", 8);
    l->meta_len = 65;
    CHECK_RC(framering_writer_commit(&w), FRAMERING_ERR_TOO_LARGE, w.err.msg);
    l->meta_len = 8;
    CHECK_RC(framering_writer_commit(&w), FRAMERING_OK, w.err.msg);
    CHECK_RC(framering_writer_commit(&w), FRAMERING_ERR_INVALID, w.err.msg);
    framering_frame f;
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 0), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 1);
    CHECK_EQ(f.len, 100);
    CHECK_EQ(f.format, FRAMERING_RAW);
    CHECK_EQ(f.capture_ns, 12345);
    CHECK(f.meta_len == 5 && memcmp(f.meta, "hello", 5) == 0, "metadata of frame 1");
    CHECK(framering_pattern_check(f.pixels, (size_t)f.len, 1, NULL, 0) == 0, "pattern");
    CHECK_RC(framering_reader_acquire(&r, &f, 0), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 2);
    CHECK(f.meta_len == 8 && memcmp(f.meta, "in place", 8) == 0, "metadata of frame 2");
    CHECK(f.publish_ns > 0 && f.capture_ns == f.publish_ns, "capture defaults to the publish time");
    CHECK_RC(framering_reader_release(&r), FRAMERING_OK, r.err.msg);
    framering_writer_stats ws;
    framering_writer_stats_get(&w, &ws);
    CHECK_EQ(ws.frames, 2);
    CHECK_EQ(ws.aborts, 1);
    CHECK_EQ(ws.bytes, 150);
    /* invalid frames */
    framering_frame_info bad = bgr(100, 100);
    CHECK_RC(framering_writer_reserve(&w, &bad, &l), FRAMERING_ERR_TOO_LARGE, w.err.msg);
    CHECK_HAS(w.err.msg, "larger max_frame_bytes");
    bad = bgr(0, 10);
    CHECK_RC(framering_writer_reserve(&w, &bad, &l), FRAMERING_ERR_INVALID, w.err.msg);
    bad = bgr(10, 10);
    bad.channels = 4;
    CHECK_RC(framering_writer_reserve(&w, &bad, &l), FRAMERING_ERR_INVALID, w.err.msg);
    bad = bgr(10, 10);
    bad.stride = 20;
    CHECK_RC(framering_writer_reserve(&w, &bad, &l), FRAMERING_ERR_INVALID, w.err.msg);
    bad.format = 9;
    CHECK_RC(framering_writer_reserve(&w, &bad, &l), FRAMERING_ERR_INVALID, w.err.msg);
    framering_frame_info g16 = bgr(10, 10);
    g16.format = FRAMERING_GRAY16;
    CHECK_RC(framering_writer_reserve(&w, &g16, &l), FRAMERING_OK, w.err.msg);
    CHECK_EQ(l->len, 200);
    CHECK_EQ(l->stride, 20);
    framering_writer_abort(&w);
    framering_reader_close(&r);
    framering_writer_remove(&w);
}

static void test_busy_and_arguments(void) {
    char name[128];
    ring_name(name, sizeof name);
    static framering_writer w, w2;
    framering_writer_options o = wopts(4, 1000);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    CHECK_RC(framering_writer_open(&w2, name, &o), FRAMERING_ERR_BUSY, w2.err.msg);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %d", (int)getpid());
    CHECK_HAS(w2.err.msg, pid);
    CHECK_HAS(w2.err.msg, "stop that producer");
    CHECK_RC(framering_writer_close(&w2), FRAMERING_OK, "closing a failed handle");
    /* a second writer in another process is refused too */
    pid_t c = fork_child();
    if (c == 0) {
        static framering_writer w3;
        _exit(framering_writer_open(&w3, name, &o) == FRAMERING_ERR_BUSY ? 0 : 1);
    }
    CHECK_EQ(wait_exit(c), 0);
    framering_writer_remove(&w);

    static framering_reader r;
    framering_reader_options ro = ropts(0, 0);
    CHECK_RC(framering_reader_open(&r, "../etc", &ro), FRAMERING_ERR_INVALID, r.err.msg);
    CHECK_RC(framering_reader_open(&r, "", &ro), FRAMERING_ERR_INVALID, r.err.msg);
    CHECK_RC(framering_reader_open(&r, "..", &ro), FRAMERING_ERR_INVALID, r.err.msg);
    CHECK_RC(framering_reader_open(&r, "nope-not-here", &ro), FRAMERING_ERR_NOT_FOUND, r.err.msg);
    CHECK_HAS(r.err.msg, "start its producer");
    ro.mode = 7;
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_ERR_INVALID, r.err.msg);
    CHECK_RC(framering_reader_read(&r, NULL, 0, NULL, 0), FRAMERING_ERR_CLOSED, r.err.msg);
    CHECK_RC(framering_reader_close(&r), FRAMERING_OK, "");
    o.mode = 0666;
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_ERR_UNSAFE, w.err.msg);
    o = wopts(3, 1000);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_ERR_INVALID, w.err.msg);
    o = wopts(4, 0);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_ERR_INVALID, w.err.msg);
    o = wopts(4, 100);
    o.dir = "/nonexistent-framering-dir";
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_ERR_NOT_FOUND, w.err.msg);
    CHECK_HAS(w.err.msg, "does not exist");
    /* mode 0640 is kept despite the umask */
    mode_t old = umask(077);
    o = wopts(4, 100);
    o.mode = 0640;
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    umask(old);
    struct stat st;
    CHECK(stat(framering_writer_path(&w), &st) == 0, "stat");
    CHECK_EQ(st.st_mode & 0777, 0640);
    framering_writer_remove(&w);
}

typedef struct blocked {
    framering_reader *r;
    int rc;
} blocked;

static void *blocked_read(void *arg) {
    blocked *b = (blocked *)arg;
    framering_frame f;
    b->rc = framering_reader_read(b->r, NULL, 0, &f, -1);
    return NULL;
}

/* cancel and close from another thread end a blocked read. */
static void test_cancel_and_close(void) {
    char name[128];
    ring_name(name, sizeof name);
    static framering_writer w;
    framering_writer_options o = wopts(4, 100);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    static framering_reader r;
    framering_reader_options ro = ropts(0, FRAMERING_START_NEXT);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    blocked b = {&r, -1};
    pthread_t t;
    pthread_create(&t, NULL, blocked_read, &b);
    usleep(50000);
    framering_reader_cancel(&r);
    pthread_join(t, NULL);
    CHECK_RC(b.rc, FRAMERING_ERR_CANCELED, r.err.msg);
    b.rc = -1;
    pthread_create(&t, NULL, blocked_read, &b);
    usleep(50000);
    CHECK_RC(framering_reader_close(&r), FRAMERING_OK, "");
    pthread_join(t, NULL);
    CHECK_RC(b.rc, FRAMERING_ERR_CLOSED, "blocked read after close");
    framering_writer_remove(&w);
}

/* SIGKILL of a writer process: the reader reports the writer gone once,
 * and resumes when a new writer takes the ring over; numbering continues,
 * the half-written slot of a loan the dead writer held is repaired. */
static void test_writer_killed_resume(void) {
    char name[128], path[512];
    ring_name(name, sizeof name);
    ring_path(path, sizeof path, name);
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe");
    pid_t pid = fork_child();
    if (pid == 0) child_writer(name, 4, 64, 48, -1, 500, ready[1], -1);
    CHECK(pipe_get(ready[0]), "child writer did not start");
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEWEST);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    framering_frame f;
    uint64_t last = 0;
    for (int i = 0; i < 20; i++) {
        CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 20000000000LL), FRAMERING_OK, r.err.msg);
        CHECK(framering_pattern_check(f.pixels, (size_t)f.len, f.number, NULL, 0) == 0, "pattern");
        last = f.number;
    }
    kill(pid, SIGKILL);
    wait_exit(pid);
    int rc;
    int frames_after_kill = 0;
    while ((rc = framering_reader_read(&r, NULL, 0, &f, 20000000000LL)) == FRAMERING_OK) {
        last = f.number; /* what was still in the ring */
        frames_after_kill++;
        CHECK(frames_after_kill < 100, "frames keep coming after SIGKILL");
    }
    CHECK_RC(rc, FRAMERING_ERR_WRITER_GONE, r.err.msg);
    CHECK_HAS(r.err.msg, "exited or closed");
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    CHECK_EQ(s.writer_gone, 1);
    CHECK_EQ(s.writer_up, 0);
    uint8_t sb[4096];
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, sb, sizeof sb, 0) == (ssize_t)sizeof sb, "read superblock");
    close(fd);
    uint64_t head = fr__le64(sb + FR__SB_HEAD);
    CHECK(last <= head, "read frame %llu beyond head %llu", (unsigned long long)last, (unsigned long long)head);

    /* A writer that dies holding a loan leaves its slot odd. */
    pid = fork_child();
    if (pid == 0) {
        static framering_writer w2;
        framering_writer_options o = wopts(4, 64 * 48 * 3);
        if (framering_writer_open(&w2, name, &o) != FRAMERING_OK) _exit(1);
        framering_frame_info fi = bgr(64, 48);
        framering_loan *l;
        if (framering_writer_reserve(&w2, &fi, &l) != FRAMERING_OK) _exit(1);
        memset(l->pixels, 0xAB, 100);
        pipe_put(ready[1]);
        pause();
        _exit(0);
    }
    CHECK(pipe_get(ready[0]), "loan child");
    kill(pid, SIGKILL);
    wait_exit(pid);
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, sb, sizeof sb, 0) == (ssize_t)sizeof sb, "read superblock");
    close(fd);
    head = fr__le64(sb + FR__SB_HEAD); /* the loan writer's takeover may have raised it */
    CHECK(last <= head, "head went back");
    framering_geometry g;
    framering_geometry_make(4, 64 * 48 * 3, 4096, &g);
    uint8_t hdr[128];
    fd = open(path, O_RDONLY);
    CHECK(pread(fd, hdr, sizeof hdr, (off_t)(4096 + ((head + 1) & 3) * g.slot_stride)) == 128, "slot header");
    CHECK((fr__le64(hdr) & 1) == 1, "the dead loan's slot is not odd");

    /* The next writer takes over in place: repairs, generation 3, head+1. */
    static framering_writer w;
    framering_writer_options o = wopts(4, 64 * 48 * 3);
    struct stat before, after;
    stat(path, &before);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    stat(path, &after);
    CHECK_EQ(after.st_ino, before.st_ino); /* in place */
    CHECK_EQ(framering_writer_generation(&w), 3);
    CHECK_EQ(framering_writer_next(&w), head + 1);
    CHECK(pread(fd, hdr, sizeof hdr, (off_t)(4096 + ((head + 1) & 3) * g.slot_stride)) == 128, "slot header");
    close(fd);
    CHECK((fr__le64(hdr) & 1) == 0, "takeover left the slot odd");
    CHECK_EQ(fr__le64(hdr + 8), 0);
    uint64_t first_new = head + 1;
    publish_pattern(&w, bgr(64, 48), 5);
    /* The reader resumes (it may first see the loan writer come and go). */
    int resumed = 0;
    for (int i = 0; i < 10 && !resumed; i++) {
        rc = framering_reader_read(&r, NULL, 0, &f, 20000000000LL);
        if (rc == FRAMERING_ERR_WRITER_GONE) continue;
        CHECK_RC(rc, FRAMERING_OK, r.err.msg);
        resumed = 1;
    }
    CHECK(resumed, "no frame after the new writer");
    CHECK(f.number >= first_new && f.number <= first_new + 4, "frame %llu after resume, want %llu..%llu",
          (unsigned long long)f.number, (unsigned long long)first_new, (unsigned long long)first_new + 4);
    CHECK_EQ(f.generation, 3);
    CHECK(framering_pattern_check(f.pixels, (size_t)f.len, f.number, NULL, 0) == 0, "pattern after resume");
    framering_reader_stats_get(&r, &s);
    CHECK(s.resumes >= 1, "resumes %llu", (unsigned long long)s.resumes);
    CHECK_EQ(s.resumes, s.writer_gone);
    CHECK_EQ(s.writer_up, 1);
    CHECK_EQ(s.resets, 0);
    CHECK(window_ok(&s), "accounting");
    framering_reader_close(&r);
    framering_writer_remove(&w);
    close(ready[0]), close(ready[1]);
}

/* A writer that stops (SIGSTOP) holds its lock but its heartbeat ages:
 * hung, reported as gone; SIGCONT: resumed. */
static void test_hung_writer(void) {
    char name[128];
    ring_name(name, sizeof name);
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe");
    pid_t pid = fork_child();
    if (pid == 0) {
        static framering_writer w;
        framering_writer_options o = wopts(4, 100);
        o.heartbeat_ns = 10000000;
        if (framering_writer_open(&w, name, &o) != FRAMERING_OK) _exit(1);
        pipe_put(ready[1]);
        for (;;) pause();
    }
    CHECK(pipe_get(ready[0]), "child");
    static framering_reader r;
    framering_reader_options ro = ropts(0, FRAMERING_START_NEXT);
    ro.hung_after_ns = 500000000;
    ro.wait_slice_ns = 50000000;
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    framering_frame f;
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 300000000), FRAMERING_ERR_TIMEOUT, r.err.msg);
    kill(pid, SIGSTOP);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 20000000000LL), FRAMERING_ERR_WRITER_GONE, r.err.msg);
    CHECK_HAS(r.err.msg, "hung or stopped");
    kill(pid, SIGCONT);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 500000000), FRAMERING_ERR_TIMEOUT, r.err.msg);
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    CHECK_EQ(s.writer_gone, 1);
    CHECK_EQ(s.resumes, 1);
    kill(pid, SIGKILL);
    wait_exit(pid);
    framering_reader_close(&r);
    unlink_ring(name);
    close(ready[0]), close(ready[1]);
}

/* --- when a reader resumes on the same file (§10) ---
 * The tests hold the OFD write lock themselves, as a new writer does while
 * it prefaults the file before its takeover or builds a replacement, and
 * count the reader's futex wait slices through fr__test_before_wait. */

#define IDLE_SLICES 5 /* slices the reader must wait without resuming */

enum { BACK_GENERATION, BACK_TAKEOVER, BACK_HEARTBEAT };

static struct {
    framering_reader *r;
    int how;                  /* BACK_* */
    const char *name, *path;
    int lock_fd;              /* the test's lock; -1 once dropped */
    uint64_t gen;             /* the generation to write (BACK_GENERATION) */
    framering_writer *w;      /* BACK_TAKEOVER: the writer that takes over */
    int slices, backed, resumed_before, failed;
} bk;

static void pwrite64_at(const char *path, off_t off, uint64_t v) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || pwrite(fd, &v, 8, off) != 8) bk.failed = 1;
    if (fd >= 0) close(fd);
}

static void back_hook(framering_reader *r) {
    if (r != bk.r) return;
    bk.slices++;
    if (!bk.backed && FR__LOAD(&r->st.resumes) != 0 && bk.resumed_before == 0) bk.resumed_before = bk.slices;
    if (bk.slices == IDLE_SLICES && !bk.backed) {
        bk.backed = 1;
        switch (bk.how) {
        case BACK_GENERATION:
            pwrite64_at(bk.path, FR__SB_GEN, bk.gen);
            break;
        case BACK_HEARTBEAT:
            pwrite64_at(bk.path, FR__SB_HEARTBEAT, (uint64_t)framering_now_ns());
            break;
        case BACK_TAKEOVER: {
            close(bk.lock_fd);
            bk.lock_fd = -1;
            framering_writer_options o = wopts(4, 64 * 48 * 3);
            if (framering_writer_open(bk.w, bk.name, &o) != FRAMERING_OK || publish_pattern(bk.w, bgr(64, 48), 1) == 0)
                bk.failed = 1;
            break;
        }
        }
    } else if (bk.backed && bk.how != BACK_TAKEOVER && FR__LOAD(&r->st.resumes) != 0) {
        framering_reader_cancel(r); /* resumed: end the read */
    }
}

/* lock_ring takes the OFD write lock on path and stamps nothing. */
static int lock_ring(const char *path) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return -1;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A writer closed; something holds the lock again without bumping
 * Generation (a writer preparing or replacing the file): the reader does
 * not resume, however fresh the old heartbeat, until Generation moves
 * (written by hand, or by a real takeover in place). */
static void run_no_resume_on_lock(int how) {
    char name[128], path[512];
    ring_name(name, sizeof name);
    ring_path(path, sizeof path, name);
    static framering_writer w, w2;
    framering_writer_options o = wopts(4, 64 * 48 * 3);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    publish_pattern(&w, bgr(64, 48), 2);
    uint64_t gen = framering_writer_generation(&w);
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEWEST);
    ro.wait_slice_ns = 5000000;
    ro.hung_after_ns = 3600LL * 1000000000LL; /* the closed writer's heartbeat stays fresh */
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    framering_frame f;
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 20000000000LL), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 2);
    CHECK_RC(framering_writer_close(&w), FRAMERING_OK, w.err.msg);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 20000000000LL), FRAMERING_ERR_WRITER_GONE, r.err.msg);
    CHECK_HAS(r.err.msg, "exited or closed");
    int lk = lock_ring(path);
    CHECK(lk >= 0, "lock %s: %s", path, strerror(errno));

    memset(&bk, 0, sizeof bk);
    bk.r = &r, bk.how = how, bk.name = name, bk.path = path, bk.lock_fd = lk, bk.gen = gen + 1, bk.w = &w2;
    fr__test_before_wait = back_hook;
    int rc = framering_reader_read(&r, NULL, 0, &f, 20000000000LL);
    fr__test_before_wait = NULL;
    if (bk.lock_fd >= 0) close(bk.lock_fd);
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    char msg[FRAMERING_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", r.err.msg);
    framering_reader_close(&r);
    if (how == BACK_TAKEOVER) framering_writer_remove(&w2);
    else unlink_ring(name);
    CHECK(!bk.failed, "the test's writes or the takeover failed");
    CHECK(bk.resumed_before == 0, "the reader resumed before any writer completed a takeover (wait slice %d)",
          bk.resumed_before);
    CHECK(bk.slices >= IDLE_SLICES, "%d wait slices, want at least %d", bk.slices, IDLE_SLICES);
    if (how == BACK_TAKEOVER) {
        CHECK_RC(rc, FRAMERING_OK, msg);
        CHECK_EQ(f.number, 3);
        CHECK_EQ(f.generation, gen + 1);
    } else {
        CHECK_RC(rc, FRAMERING_ERR_CANCELED, msg);
    }
    CHECK_EQ(s.writer_gone, 1);
    CHECK_EQ(s.resumes, 1);
    CHECK_EQ(s.writer_up, 1);
}

static void test_no_resume_on_lock_generation(void) { run_no_resume_on_lock(BACK_GENERATION); }
static void test_no_resume_on_lock_takeover(void) { run_no_resume_on_lock(BACK_TAKEOVER); }

/* A writer that takes the file over, publishes and closes while the reader
 * waits after writer-gone left its frames (Generation moved): the reader
 * delivers them, then reports the writer gone a second time (§10). */
static void test_resume_after_writer_came_and_went(void) {
    char name[128];
    ring_name(name, sizeof name);
    static framering_writer w, w2;
    framering_writer_options o = wopts(4, 64 * 48 * 3);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    publish_pattern(&w, bgr(64, 48), 2);
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEWEST);
    ro.wait_slice_ns = 5000000;
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    framering_frame f;
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 20000000000LL), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 2);
    CHECK_RC(framering_writer_close(&w), FRAMERING_OK, w.err.msg);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 20000000000LL), FRAMERING_ERR_WRITER_GONE, r.err.msg);
    CHECK_RC(framering_writer_open(&w2, name, &o), FRAMERING_OK, w2.err.msg); /* takes the same file over */
    publish_pattern(&w2, bgr(64, 48), 1);
    uint64_t gen2 = framering_writer_generation(&w2);
    CHECK_RC(framering_writer_close(&w2), FRAMERING_OK, w2.err.msg);
    int rc1 = framering_reader_read(&r, NULL, 0, &f, 20000000000LL);
    uint64_t n1 = f.number, g1 = f.generation;
    int rc2 = framering_reader_read(&r, NULL, 0, &f, 20000000000LL);
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    framering_reader_close(&r);
    unlink_ring(name);
    CHECK_RC(rc1, FRAMERING_OK, "the frame of the writer that came and went");
    CHECK_EQ(n1, 3);
    CHECK_EQ(g1, gen2);
    CHECK_RC(rc2, FRAMERING_ERR_WRITER_GONE, "after frame 3");
    CHECK_EQ(s.writer_gone, 2);
    CHECK_EQ(s.resumes, 1);
    CHECK_EQ(s.delivered, 2);
    CHECK_EQ(s.window_frames, 2);
}

/* A hung writer (the lock held, its heartbeat stale) that stamps its
 * heartbeat again is back with the same Generation; while the heartbeat
 * stays stale the reader waits. */
static void test_hung_resumes_same_generation(void) {
    char name[128], path[512];
    ring_name(name, sizeof name);
    ring_path(path, sizeof path, name);
    static framering_writer w;
    framering_writer_options o = wopts(4, 64 * 48 * 3);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    publish_pattern(&w, bgr(64, 48), 2);
    uint64_t gen = framering_writer_generation(&w);
    CHECK_RC(framering_writer_close(&w), FRAMERING_OK, w.err.msg);
    /* The "writer": the lock held, a heartbeat from 1 ns after boot. */
    int lk = lock_ring(path);
    CHECK(lk >= 0, "lock %s: %s", path, strerror(errno));
    pwrite64_at(path, FR__SB_HEARTBEAT, 1);
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEWEST);
    ro.wait_slice_ns = 5000000;
    ro.hung_after_ns = 10LL * 1000000000LL;
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    framering_frame f;
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 20000000000LL), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 2);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 20000000000LL), FRAMERING_ERR_WRITER_GONE, r.err.msg);
    CHECK_HAS(r.err.msg, "hung or stopped");

    memset(&bk, 0, sizeof bk);
    bk.r = &r, bk.how = BACK_HEARTBEAT, bk.path = path, bk.lock_fd = lk;
    fr__test_before_wait = back_hook;
    int rc = framering_reader_read(&r, NULL, 0, &f, 20000000000LL);
    fr__test_before_wait = NULL;
    close(lk);
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    char msg[FRAMERING_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", r.err.msg);
    framering_reader_close(&r);
    uint8_t sb[4096];
    int fd = open(path, O_RDONLY);
    int got = fd >= 0 && pread(fd, sb, sizeof sb, 0) == (ssize_t)sizeof sb;
    if (fd >= 0) close(fd);
    unlink_ring(name);
    CHECK(got, "read superblock");
    CHECK(!bk.failed, "the test's writes failed");
    CHECK(bk.resumed_before == 0, "the reader resumed on a stale heartbeat (wait slice %d)", bk.resumed_before);
    CHECK(bk.slices >= IDLE_SLICES, "%d wait slices, want at least %d", bk.slices, IDLE_SLICES);
    CHECK_RC(rc, FRAMERING_ERR_CANCELED, msg);
    CHECK_EQ(s.writer_gone, 1);
    CHECK_EQ(s.resumes, 1);
    CHECK_EQ(fr__le64(sb + FR__SB_GEN), gen);
}

/* A writer with another geometry replaces the file; the reader re-maps
 * and continues the numbering. Then a ring recreated from scratch: reset. */
static void test_geometry_change_and_reset(void) {
    char name[128], path[512];
    ring_name(name, sizeof name);
    ring_path(path, sizeof path, name);
    static framering_writer w;
    framering_writer_options o = wopts(4, 64 * 48 * 3);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    publish_pattern(&w, bgr(64, 48), 10);
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEWEST);
    ro.wait_slice_ns = 20000000;
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    framering_frame f;
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 0), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 10);
    framering_writer_close(&w);
    struct stat a, b;
    stat(path, &a);
    o = wopts(8, 128 * 96 * 3);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    stat(path, &b);
    CHECK(a.st_ino != b.st_ino, "no new file for a new geometry");
    CHECK_EQ(framering_writer_next(&w), 11); /* numbering carried over */
    CHECK_EQ(framering_writer_generation(&w), 2);
    publish_pattern(&w, bgr(128, 96), 3);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 20000000000LL), FRAMERING_ERR_WRITER_GONE, r.err.msg);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 20000000000LL), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 11);
    CHECK_EQ(f.width, 128);
    CHECK_EQ(f.generation, 2);
    CHECK(framering_pattern_check(f.pixels, (size_t)f.len, 11, NULL, 0) == 0, "pattern of the new geometry");
    framering_geometry g = framering_reader_geometry(&r);
    CHECK_EQ(g.slots, 8);
    CHECK_EQ(g.payload_cap, 128 * 96 * 3);
    /* Removed, then created from scratch: the numbering starts again. */
    CHECK_RC(framering_writer_remove(&w), FRAMERING_OK, w.err.msg);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    CHECK_EQ(framering_writer_next(&w), 1);
    CHECK_EQ(framering_writer_generation(&w), 1);
    publish_pattern(&w, bgr(128, 96), 3);
    /* The reader first reads 12 and 13 from the old (unlinked) mapping,
     * then finds the writer gone, re-maps and resets. */
    uint64_t seen[8];
    int ns = 0, gone = 0;
    for (;;) {
        int rc = framering_reader_read(&r, NULL, 0, &f, 20000000000LL);
        if (rc == FRAMERING_ERR_WRITER_GONE) {
            CHECK(++gone < 3, "writer gone again and again");
            continue;
        }
        CHECK_RC(rc, FRAMERING_OK, r.err.msg);
        CHECK(framering_pattern_check(f.pixels, (size_t)f.len, f.number, NULL, 0) == 0, "pattern of frame %llu",
              (unsigned long long)f.number);
        CHECK(ns < 6, "too many frames");
        seen[ns++] = f.number;
        if (f.number == 1) break;
    }
    CHECK_EQ(ns, 3);
    CHECK(seen[0] == 12 && seen[1] == 13 && seen[2] == 1, "frames %llu %llu %llu, want 12 13 1",
          (unsigned long long)seen[0], (unsigned long long)seen[1], (unsigned long long)seen[2]);
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    CHECK_EQ(s.resets, 1);
    CHECK_EQ(s.resumes, 2);
    CHECK_EQ(s.writer_gone, 2);
    CHECK_EQ(s.window_start, 1);
    CHECK_EQ(s.delivered, 5);
    CHECK_EQ(s.window_frames, 5); /* window 1: frames 10..13, window 2: frame 1 */
    CHECK(window_ok(&s), "accounting across windows");
    framering_reader_close(&r);
    framering_writer_remove(&w);
}

/* --- hostile files --- */

/* make_ring writes a closed ring with frames 1..frames published (4 slots,
 * 64x48x3) and returns its geometry. */
static int make_ring(const char *name, int frames, framering_geometry *g) {
    static framering_writer w;
    framering_writer_options o = wopts(4, 64 * 48 * 3);
    if (framering_writer_open(&w, name, &o) != FRAMERING_OK) return -1;
    publish_pattern(&w, bgr(64, 48), frames);
    *g = framering_writer_geometry(&w);
    return framering_writer_close(&w);
}

static void patch(const char *path, off_t off, const void *p, size_t n, int fix_checksum) {
    int fd = open(path, O_RDWR);
    if (pwrite(fd, p, n, off) != (ssize_t)n) fprintf(stderr, "patch: pwrite failed\n");
    if (fix_checksum) {
        uint8_t sb[60];
        if (pread(fd, sb, 60, 0) != 60) fprintf(stderr, "patch: pread failed\n");
        uint32_t c = framering_crc32c(sb, 60);
        if (pwrite(fd, &c, 4, 60) != 4) fprintf(stderr, "patch: pwrite failed\n");
    }
    close(fd);
}

static void patch32(const char *path, off_t off, uint32_t v, int fix) { patch(path, off, &v, 4, fix); }
static void patch64(const char *path, off_t off, uint64_t v, int fix) { patch(path, off, &v, 8, fix); }

/* reader_open_rc opens name and returns the code (closing on success). */
static int reader_open_rc(const char *name, framering_reader_options *ro, char *msg, size_t n) {
    static framering_reader r;
    int rc = framering_reader_open(&r, name, ro);
    snprintf(msg, n, "%s", r.err.msg);
    framering_reader_close(&r);
    return rc;
}

static void test_hostile_superblocks(void) {
    struct {
        const char *what;
        off_t off;
        uint64_t v;
        int size; /* 4 or 8 */
        int fix;
        int want;
        const char *says;
    } cases[] = {
        {"bad magic", 0, 0x474e4952414d5246ull, 8, 1, FRAMERING_ERR_INCOMPATIBLE, "magic"},
        {"version 3", 8, 3, 4, 0, FRAMERING_ERR_INCOMPATIBLE, "version is 3, want 2"},
        {"version 1", 8, 1, 4, 1, FRAMERING_ERR_INCOMPATIBLE, "version is 1"},
        {"bad checksum", 60, 0xdeadbeef, 4, 0, FRAMERING_ERR_CORRUPT, "checksum"},
        {"stray write to the geometry", 16, 8, 4, 0, FRAMERING_ERR_CORRUPT, "checksum"},
        {"flags", 56, 1, 4, 1, FRAMERING_ERR_INCOMPATIBLE, "flags"},
        {"superblock size", 12, 8192, 4, 1, FRAMERING_ERR_INCOMPATIBLE, "superblock size"},
        {"slot count 3", 16, 3, 4, 1, FRAMERING_ERR_CORRUPT, "out of range"},
        {"slot count 0", 16, 0, 4, 1, FRAMERING_ERR_CORRUPT, "out of range"},
        {"payload cap 0", 40, 0, 8, 1, FRAMERING_ERR_CORRUPT, "out of range"},
        {"payload cap huge", 40, ~0ull, 8, 1, FRAMERING_ERR_CORRUPT, "out of range"},
        {"meta cap huge", 20, 0x7fffffff, 4, 1, FRAMERING_ERR_CORRUPT, "out of range"},
        {"slot stride", 24, 4096, 8, 1, FRAMERING_ERR_CORRUPT, "slot stride"},
        {"payload offset", 32, 0, 8, 1, FRAMERING_ERR_CORRUPT, "payload offset"},
        {"file size", 48, 1 << 20, 8, 1, FRAMERING_ERR_CORRUPT, "file size"},
        {"more slots than the file holds", 16, 64, 4, 2, FRAMERING_ERR_TRUNCATED, "truncated"},
        {"absurd head", 192, ((uint64_t)1 << 63) + 5, 8, 0, FRAMERING_ERR_CORRUPT, "absurd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[128], path[512], msg[FRAMERING_MSG_MAX];
        ring_name(name, sizeof name);
        ring_path(path, sizeof path, name);
        framering_geometry g;
        CHECK(make_ring(name, 2, &g) == 0, "make ring");
        if (cases[i].fix == 2) {
            /* geometry of 64 slots, consistent, but the file has 4 */
            framering_geometry big;
            framering_geometry_make(64, g.payload_cap, g.meta_cap, &big);
            patch32(path, 16, 64, 0);
            patch64(path, 24, big.slot_stride, 0);
            patch64(path, 48, big.file_size, 1);
        } else if (cases[i].size == 4)
            patch32(path, cases[i].off, (uint32_t)cases[i].v, cases[i].fix);
        else
            patch64(path, cases[i].off, cases[i].v, cases[i].fix);
        framering_reader_options ro = ropts(0, 0);
        int rc = reader_open_rc(name, &ro, msg, sizeof msg);
        if (rc != cases[i].want)
            FAIL("%s: open returned %s, want %s: %s", cases[i].what, framering_code_name(rc),
                 framering_code_name(cases[i].want), msg);
        CHECK_HAS(msg, cases[i].says);
        if (cases[i].want != FRAMERING_ERR_CORRUPT || strcmp(cases[i].says, "absurd") != 0)
            CHECK(strstr(msg, "remove") || strstr(msg, "restart") || strstr(msg, "use a") || strstr(msg, "producer"),
                  "%s: the message does not say what to do: %s", cases[i].what, msg);
        /* A writer replaces any of these files (never a crash or a hang). */
        static framering_writer w;
        framering_writer_options o = wopts(4, 64 * 48 * 3);
        CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
        framering_writer_remove(&w);
    }
}

static void test_unsafe_files(void) {
    char name[128], path[512], msg[FRAMERING_MSG_MAX];
    framering_reader_options ro = ropts(0, 0);
    static framering_writer w;
    framering_writer_options o = wopts(4, 100);
    framering_geometry g;

    /* A FIFO named like a ring: refused at once, never blocks open. */
    ring_name(name, sizeof name);
    ring_path(path, sizeof path, name);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo");
    CHECK_RC(reader_open_rc(name, &ro, msg, sizeof msg), FRAMERING_ERR_UNSAFE, msg);
    CHECK_HAS(msg, "not a regular file");
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_ERR_UNSAFE, w.err.msg);
    CHECK_HAS(w.err.msg, "not a regular file");
    unlink(path);

    /* A directory. */
    CHECK(mkdir(path, 0700) == 0, "mkdir");
    CHECK_RC(reader_open_rc(name, &ro, msg, sizeof msg), FRAMERING_ERR_UNSAFE, msg);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_ERR_UNSAFE, w.err.msg);
    rmdir(path);

    /* A symlink to a valid ring. */
    char target[128], tpath[512];
    ring_name(target, sizeof target);
    ring_path(tpath, sizeof tpath, target);
    CHECK(make_ring(target, 2, &g) == 0, "make ring");
    CHECK(symlink(tpath, path) == 0, "symlink");
    CHECK_RC(reader_open_rc(name, &ro, msg, sizeof msg), FRAMERING_ERR_UNSAFE, msg);
    CHECK_HAS(msg, "symbolic link");
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_ERR_UNSAFE, w.err.msg);
    CHECK_HAS(w.err.msg, "symbolic link");
    unlink(path);

    /* World- and group-writable rings. */
    chmod(tpath, 0666);
    CHECK_RC(reader_open_rc(target, &ro, msg, sizeof msg), FRAMERING_ERR_UNSAFE, msg);
    CHECK_HAS(msg, "world-writable");
    CHECK_RC(framering_writer_open(&w, target, &o), FRAMERING_ERR_UNSAFE, w.err.msg);
    chmod(tpath, 0660);
    CHECK_RC(reader_open_rc(target, &ro, msg, sizeof msg), FRAMERING_ERR_UNSAFE, msg);
    CHECK_HAS(msg, "group-writable");
    ro.allow_group_writable = 1;
    CHECK_RC(reader_open_rc(target, &ro, msg, sizeof msg), FRAMERING_OK, msg);
    ro.allow_group_writable = 0;
    chmod(tpath, 0640);
    CHECK_RC(reader_open_rc(target, &ro, msg, sizeof msg), FRAMERING_OK, msg);
    unlink(tpath);

    /* Truncated files. */
    CHECK(make_ring(target, 2, &g) == 0, "make ring");
    CHECK(truncate(tpath, (off_t)g.file_size - 4096) == 0, "truncate");
    CHECK_RC(reader_open_rc(target, &ro, msg, sizeof msg), FRAMERING_ERR_TRUNCATED, msg);
    CHECK_HAS(msg, "still creating");
    CHECK(truncate(tpath, 100) == 0, "truncate");
    CHECK_RC(reader_open_rc(target, &ro, msg, sizeof msg), FRAMERING_ERR_TRUNCATED, msg);
    CHECK(truncate(tpath, 0) == 0, "truncate");
    CHECK_RC(reader_open_rc(target, &ro, msg, sizeof msg), FRAMERING_ERR_TRUNCATED, msg);
    /* ... and a writer replaces a truncated file. */
    CHECK_RC(framering_writer_open(&w, target, &o), FRAMERING_OK, w.err.msg);
    framering_writer_remove(&w);
}

/* D4: a replacement carries the numbering of a readable superblock, even
 * from a truncated file; D3: an absurd head is not trusted at takeover. */
static void test_carry_and_absurd_head_takeover(void) {
    char name[128], path[512];
    ring_name(name, sizeof name);
    ring_path(path, sizeof path, name);
    framering_geometry g;
    CHECK(make_ring(name, 50, &g) == 0, "make ring");
    CHECK(truncate(path, (off_t)g.file_size - 4096) == 0, "truncate");
    static framering_writer w;
    framering_writer_options o = wopts(4, 64 * 48 * 3);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    CHECK_EQ(framering_writer_next(&w), 51);
    CHECK_EQ(framering_writer_generation(&w), 2);
    framering_writer_close(&w);
    /* an unreadable superblock starts from scratch */
    patch32(path, 60, 0, 0);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    CHECK_EQ(framering_writer_next(&w), 1);
    CHECK_EQ(framering_writer_generation(&w), 1);
    publish_pattern(&w, bgr(64, 48), 6); /* slots hold 3..6 */
    framering_writer_close(&w);
    /* absurd heads: >= 2^63, and far above every slot */
    uint64_t heads[] = {((uint64_t)1 << 63) + 7, 1000000};
    for (int i = 0; i < 2; i++) {
        patch64(path, 192, heads[i], 0);
        CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
        CHECK_EQ(framering_writer_next(&w), 7);
        framering_writer_close(&w);
    }
    /* a slot with a stray frame number far above the others is ignored,
     * one a slot-count above the head (died before the head store) is not */
    patch64(path, (off_t)(4096 + 1 * g.slot_stride + 8), 4000001, 0); /* slot 1: 4000001 & 3 == 1 */
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    CHECK_EQ(framering_writer_next(&w), 7);
    framering_writer_close(&w);
    patch64(path, (off_t)(4096 + 1 * g.slot_stride + 8), 9, 0); /* frame 9 in slot 1, head 6 */
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    CHECK_EQ(framering_writer_next(&w), 10);
    framering_writer_remove(&w);
}

/* Readers on hostile slots and heads: errors, counts, never a hang. */
static void test_hostile_frames(void) {
    char name[128], path[512];
    ring_name(name, sizeof name);
    ring_path(path, sizeof path, name);
    framering_geometry g;
    CHECK(make_ring(name, 4, &g) == 0, "make ring"); /* frames 1..4 in slots 1,2,3,0 */
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_OLDEST);
    ro.wait_slice_ns = 20000000;
    framering_frame f;

    /* Frame 2's header says format 99 under a stable seq: corrupt, skipped. */
    patch32(path, (off_t)(4096 + 2 * g.slot_stride + 36), 99, 0);
    /* Frame 3's slot is stuck odd: no writer will ever finish it. */
    uint64_t odd = 7;
    patch64(path, (off_t)(4096 + 3 * g.slot_stride), odd, 0);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 5000000000LL), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 1);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 5000000000LL), FRAMERING_ERR_CORRUPT, r.err.msg);
    CHECK_HAS(r.err.msg, "unknown pixel format 99");
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 5000000000LL), FRAMERING_ERR_CORRUPT, r.err.msg);
    CHECK_HAS(r.err.msg, "mid-write");
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 5000000000LL), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 4);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 5000000000LL), FRAMERING_ERR_WRITER_GONE, r.err.msg);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 100000000), FRAMERING_ERR_TIMEOUT, r.err.msg);
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    CHECK_EQ(s.delivered, 2);
    CHECK_EQ(s.corrupt, 2);
    CHECK_EQ(s.window_frames, 4);
    CHECK(window_ok(&s), "accounting");
    framering_reader_close(&r);

    /* The same stuck slot while some process holds the writer lock: the
     * reader waits on the futex (bounded retries), it does not spin. */
    int lfd = open(path, O_RDWR);
    CHECK(fr__lock_write(lfd) == 0, "lock");
    ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEWEST);
    ro.wait_slice_ns = 20000000;
    patch64(path, 192, 3, 0); /* head 3: the stuck frame is the newest */
    patch64(path, 128, 0, 0); /* heartbeat 0: "not stamped", the lock alone decides (D2) */
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 300000000), FRAMERING_ERR_TIMEOUT, r.err.msg);
    framering_reader_stats_get(&r, &s);
    CHECK(s.retries >= FR__TORN_PROBE && s.retries < FR__TORN_PROBE + 100, "retries %llu: spinning?",
          (unsigned long long)s.retries);
    CHECK_EQ(s.corrupt, 0);
    framering_reader_close(&r);
    close(lfd);

    /* A head the slots do not back: frame 1000's slot holds frame 4. */
    patch64(path, (off_t)(4096 + 3 * g.slot_stride), 8, 0); /* unstick */
    patch64(path, 192, 1000, 0);
    ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEWEST);
    ro.wait_slice_ns = 20000000;
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 1000000000), FRAMERING_ERR_CORRUPT, r.err.msg);
    CHECK_HAS(r.err.msg, "absurd head");
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 1000000000), FRAMERING_ERR_WRITER_GONE, r.err.msg);
    framering_reader_close(&r);
    /* ... and a head that jumps while an ordered reader follows: refused
     * before any lapped count is made up. */
    patch64(path, 192, 4, 0);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 1000000000), FRAMERING_OK, r.err.msg);
    CHECK_EQ(f.number, 4);
    patch64(path, 192, 5000000, 0);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 1000000000), FRAMERING_ERR_CORRUPT, r.err.msg);
    CHECK_HAS(r.err.msg, "absurd head");
    patch64(path, 192, ((uint64_t)1 << 63) + 1, 0);
    CHECK_RC(framering_reader_read(&r, NULL, 0, &f, 1000000000), FRAMERING_ERR_CORRUPT, r.err.msg);
    framering_reader_stats_get(&r, &s);
    CHECK_EQ(s.lapped, 0);
    CHECK_EQ(s.skipped, 0);
    framering_reader_close(&r);
    unlink(path);
}

/* D1.4: stale temporary files of dead creators are removed, live ones kept. */
static void test_stale_tmp_cleanup(void) {
    char old_p[512], new_p[512], locked_p[512], name[128];
    snprintf(old_p, sizeof old_p, "%s/.framering-tmp.x.0000000000000001", dir);
    snprintf(new_p, sizeof new_p, "%s/.framering-tmp.x.0000000000000002", dir);
    snprintf(locked_p, sizeof locked_p, "%s/.framering-tmp.x.0000000000000003", dir);
    int fds[3];
    const char *paths[3] = {old_p, new_p, locked_p};
    for (int i = 0; i < 3; i++) {
        fds[i] = open(paths[i], O_RDWR | O_CREAT | O_EXCL, 0600);
        CHECK(fds[i] >= 0, "create %s", paths[i]);
    }
    struct timespec ago[2];
    clock_gettime(CLOCK_REALTIME, &ago[0]);
    ago[0].tv_sec -= 60;
    ago[1] = ago[0];
    futimens(fds[0], ago);
    futimens(fds[2], ago);
    CHECK(fr__lock_write(fds[2]) == 0, "lock");
    close(fds[0]);
    close(fds[1]);
    static framering_writer w;
    framering_writer_options o = wopts(4, 100);
    CHECK_RC(framering_writer_open(&w, ring_name(name, sizeof name), &o), FRAMERING_OK, w.err.msg);
    framering_writer_remove(&w);
    CHECK(access(old_p, F_OK) != 0, "a stale temporary file was kept");
    CHECK(access(new_p, F_OK) == 0, "a fresh temporary file was removed");
    CHECK(access(locked_p, F_OK) == 0, "a locked temporary file was removed");
    close(fds[2]);
    unlink(new_p);
    unlink(locked_p);
}

/* remove unlinks only the writer's own file. */
static void test_remove_only_own(void) {
    char name[128], path[512], other[600];
    ring_name(name, sizeof name);
    ring_path(path, sizeof path, name);
    static framering_writer w;
    framering_writer_options o = wopts(4, 100);
    CHECK_RC(framering_writer_open(&w, name, &o), FRAMERING_OK, w.err.msg);
    snprintf(other, sizeof other, "%s.other", path);
    int fd = open(other, O_RDWR | O_CREAT, 0600);
    close(fd);
    CHECK(rename(other, path) == 0, "rename");
    CHECK_RC(framering_writer_remove(&w), FRAMERING_OK, w.err.msg);
    CHECK(access(path, F_OK) == 0, "remove unlinked a file that was not the writer's");
    unlink(path);
}

/* Writers racing on one name, half of them with another geometry (so they
 * replace the file): each one that gets the ring owns the file the name
 * points at (the re-check after locking), the others are told "busy";
 * nothing else goes wrong and no temporary file is left. */
static void test_racing_writers(void) {
    char name[128], path[512];
    ring_name(name, sizeof name);
    ring_path(path, sizeof path, name);
    enum { KIDS = 4, ROUNDS = 25 };
    int go[2];
    CHECK(pipe(go) == 0, "pipe");
    pid_t kids[KIDS];
    for (int k = 0; k < KIDS; k++) {
        kids[k] = fork_child();
        if (kids[k] == 0) {
            close(go[1]);
            char c;
            if (read(go[0], &c, 1) != 0) _exit(90); /* released when the parent closes the pipe */
            int bad = 0;
            for (int i = 0; i < ROUNDS; i++) {
                static framering_writer w;
                framering_writer_options o = wopts(k % 2 ? 4 : 8, 64 * 48 * 3);
                int rc = framering_writer_open(&w, name, &o);
                if (rc == FRAMERING_ERR_BUSY) continue;
                if (rc != FRAMERING_OK) {
                    fprintf(stderr, "racing writer: %s\n", w.err.msg);
                    bad++;
                    continue;
                }
                struct stat st;
                if (lstat(path, &st) != 0 || (uint64_t)st.st_ino != w.ino) {
                    fprintf(stderr, "racing writer %d: owns inode %llu, the name points elsewhere\n", k,
                            (unsigned long long)w.ino);
                    bad++;
                }
                if (publish_pattern(&w, bgr(64, 48), 1) == 0) bad++;
                framering_writer_close(&w);
            }
            _exit(bad > 80 ? 80 : bad);
        }
    }
    close(go[0]);
    close(go[1]); /* go */
    int total = 0;
    for (int k = 0; k < KIDS; k++) total += wait_exit(kids[k]);
    CHECK_EQ(total, 0);
    static framering_reader r;
    framering_reader_options ro = ropts(0, FRAMERING_START_NEWEST);
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    framering_reader_close(&r);
    unlink(path);
}

/* The race of PROTOCOL.md §7 Open step 4, staged: writer A opens the
 * ring's file; before A locks it, writer B (another geometry) locks it,
 * replaces it and keeps the new file. A's lock on the old, unlinked file
 * succeeds; only the re-check sends A back to the name, where it finds B:
 * busy. Without the re-check both would believe they own the ring. */
static const char *race_name;
static framering_writer race_b;
static int race_b_rc = -1;

static void replace_before_lock(const char *path) {
    (void)path;
    fr__test_before_lock = NULL; /* once */
    framering_writer_options o = wopts(8, 128 * 96 * 3);
    race_b_rc = framering_writer_open(&race_b, race_name, &o);
}

static void test_recheck_after_lock(void) {
    char name[128], path[512];
    ring_name(name, sizeof name);
    ring_path(path, sizeof path, name);
    framering_geometry g;
    CHECK(make_ring(name, 3, &g) == 0, "make ring");
    struct stat before;
    CHECK(stat(path, &before) == 0, "stat");
    race_name = name;
    fr__test_before_lock = replace_before_lock;
    static framering_writer a;
    framering_writer_options o = wopts(4, 64 * 48 * 3);
    int rc = framering_writer_open(&a, name, &o);
    fr__test_before_lock = NULL;
    CHECK_RC(race_b_rc, FRAMERING_OK, race_b.err.msg);
    struct stat after;
    CHECK(stat(path, &after) == 0, "stat");
    CHECK(after.st_ino != before.st_ino, "B did not replace the file");
    CHECK_EQ(race_b.ino, after.st_ino);
    CHECK_RC(rc, FRAMERING_ERR_BUSY, a.err.msg);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %d", (int)getpid());
    CHECK_HAS(a.err.msg, pid);
    CHECK_EQ(framering_writer_next(&race_b), 4); /* B carried the numbering of the old file */
    framering_writer_remove(&race_b);
}

/* A reader with spin: every frame from a writer thread, in order. */
static void test_spin_reader(void) {
    char name[128];
    ring_name(name, sizeof name);
    static framering_writer w0;
    framering_writer_options o = wopts(8, 64 * 48 * 3);
    CHECK_RC(framering_writer_open(&w0, name, &o), FRAMERING_OK, w0.err.msg);
    framering_writer_close(&w0);
    static framering_reader r;
    framering_reader_options ro = ropts(FRAMERING_ORDERED, FRAMERING_START_NEXT);
    ro.spin_ns = 20000000;
    CHECK_RC(framering_reader_open(&r, name, &ro), FRAMERING_OK, r.err.msg);
    writer_job j = {name, 3000, 8, 64, 48, 0, 0, ""};
    pthread_t t;
    pthread_create(&t, NULL, writer_thread, &j);
    uint64_t bad = 0;
    for (;;) {
        framering_frame f;
        int rc = framering_reader_read(&r, NULL, 0, &f, 20000000000LL);
        if (rc == FRAMERING_ERR_WRITER_GONE) {
            framering_reader_stats s;
            framering_reader_stats_get(&r, &s);
            if (s.last == 3000) break;
            continue;
        }
        if (rc != FRAMERING_OK) {
            bad++;
            break;
        }
        if (framering_pattern_check(f.pixels, (size_t)f.len, f.number, NULL, 0) != 0) bad++;
    }
    pthread_join(t, NULL);
    framering_reader_stats s;
    framering_reader_stats_get(&r, &s);
    framering_reader_close(&r);
    unlink_ring(name);
    CHECK_EQ(bad, 0);
    CHECK_EQ(s.window_frames, 3000);
    CHECK(window_ok(&s), "accounting");
}

/* ------------------------------------------------------------------ main */

typedef struct test {
    const char *name;
    void (*fn)(void);
} test;

static const test tests[] = {
    {"crc_and_pattern", test_crc_and_pattern},
    {"geometry", test_geometry},
    {"golden_superblock", test_golden_superblock},
    {"threads_ordered_verify", test_threads_ordered_verify},
    {"processes_copy_verify", test_processes_copy_verify},
    {"processes_view_verify", test_processes_view_verify},
    {"lapping_and_start", test_lapping_and_start},
    {"latest_mode", test_latest_mode},
    {"views", test_views},
    {"metadata_abort_raw", test_metadata_abort_raw},
    {"busy_and_arguments", test_busy_and_arguments},
    {"cancel_and_close", test_cancel_and_close},
    {"writer_killed_resume", test_writer_killed_resume},
    {"hung_writer", test_hung_writer},
    {"no_resume_on_lock_generation", test_no_resume_on_lock_generation},
    {"no_resume_on_lock_takeover", test_no_resume_on_lock_takeover},
    {"hung_resumes_same_generation", test_hung_resumes_same_generation},
    {"resume_after_writer_came_and_went", test_resume_after_writer_came_and_went},
    {"geometry_change_and_reset", test_geometry_change_and_reset},
    {"hostile_superblocks", test_hostile_superblocks},
    {"unsafe_files", test_unsafe_files},
    {"carry_and_absurd_head_takeover", test_carry_and_absurd_head_takeover},
    {"hostile_frames", test_hostile_frames},
    {"stale_tmp_cleanup", test_stale_tmp_cleanup},
    {"remove_only_own", test_remove_only_own},
    {"racing_writers", test_racing_writers},
    {"recheck_after_lock", test_recheck_after_lock},
    {"spin_reader", test_spin_reader},
};

static void remove_dir(const char *d) {
    DIR *dp = opendir(d);
    if (dp == NULL) return;
    struct dirent *de;
    char p[1024];
    while ((de = readdir(dp)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", d, de->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    closedir(dp);
    rmdir(d);
}

static int leftovers(const char *d) {
    DIR *dp = opendir(d);
    if (dp == NULL) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            fprintf(stderr, "  left behind: %s\n", de->d_name);
            n++;
        }
    closedir(dp);
    return n;
}

int main(int argc, char **argv) {
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
        else if (strcmp(argv[i], "--named-tmp") == 0)
            continue; /* built with FRAMERING_TEST_FORCE_NAMED_TMP: writers use the no-O_TMPFILE fallback */
        else
            only = argv[i];
    }
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/framering-ctest-XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (only && strstr(tests[i].name, only) == NULL) continue;
        current = tests[i].name;
        int before = failures;
        alarm(60); /* hang guard */
        tests[i].fn();
        alarm(0);
        ran++;
        int left = leftovers(dir);
        if (left) {
            fprintf(stderr, "FAIL %s: %d files left in %s\n", current, left, dir);
            failures++;
            remove_dir(dir);
            mkdir(dir, 0700);
        }
        printf("%s %s\n", failures == before ? "ok  " : "FAIL", current);
        fflush(stdout);
    }
    remove_dir(dir);
#ifdef FRAMERING_TEST_FORCE_NAMED_TMP
    printf("%d tests (writers forced to the named temporary file fallback), %d failures\n", ran, failures);
#else
    printf("%d tests, %d failures\n", ran, failures);
#endif
    return failures ? 1 : 0;
}
