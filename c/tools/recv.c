/* framering-recv-c: `framering recv --verify` in C, on c/framering.h.
 * Follows ring NAME, reads its frames by copy (or in place with --view),
 * optionally checks every frame against the test pattern, prints a stats
 * line per second to stderr and one machine-readable summary line to
 * stdout at exit (see c/README.md). */
#define FRAMERING_IMPLEMENTATION
#include "../framering.h"

#include <signal.h>
#include <time.h>

#include "cli.h"

static const char *prog = "framering-recv-c";
static volatile sig_atomic_t stop_flag;
static framering_reader rd;
static volatile sig_atomic_t rd_open;

static void on_stop(int sig) {
    (void)sig;
    stop_flag = 1;
    if (rd_open) framering_reader_cancel(&rd); /* async-signal-safe */
}

static void usage(void) {
    printf("usage: %s --ring NAME [flags]\n"
           "\n"
           "Follows ring NAME and reads its frames: every frame in order (--mode all,\n"
           "counting the frames it was lapped on) or the newest one (--mode latest). A\n"
           "stats line goes to stderr every second; at exit one summary line of\n"
           "key=value pairs goes to stdout:\n"
           "\n"
           "  summary ring=NAME mode=ordered read=copy delivered=N dropped=N lapped=N\n"
           "  skipped=N overwritten=N corrupt=N retries=N writer_gone=N resumes=N resets=N\n"
           "  window_start=N last=N considered=N verify=0|1 verified=N mismatches=N\n"
           "  latency_samples=N p50_ns=N p90_ns=N p99_ns=N max_ns=N\n"
           "\n"
           "delivered + dropped == considered always; with one window (resets=0)\n"
           "considered == last - window_start + 1. mismatches counts delivered frames\n"
           "that fail the test pattern (a torn or foreign frame accepted). Exit status:\n"
           "0 ok, 1 failure (a mismatch, a read error, --timeout), 2 usage error.\n"
           "\n"
           "flags:\n"
           "  --ring NAME        ring name (required)\n"
           "  --dir DIR          shared-memory directory holding the rings (default /dev/shm)\n"
           "  --mode MODE        all (or ordered): every frame in order; latest: the newest\n"
           "  --start WHERE      newest (default), next, oldest: the first frame to consider\n"
           "  --count N          stop after N frames (0: no limit)\n"
           "  --verify           check every frame against the test pattern of\n"
           "                     'send --pattern'; exit 1 on any mismatch\n"
           "  --view             read in place (acquire/release) instead of copying\n"
           "  --wait             wait for the ring to appear instead of failing\n"
           "  --timeout D        fail if the ring does not appear (--wait) or no frame comes\n"
           "                     for this long (0: wait forever); e.g. 5s, 500ms\n"
           "  --spin D           busy-poll this long before sleeping\n"
           "  --eof              exit when the writer closes the ring or dies (default: wait\n"
           "                     for it to come back)\n"
           "  -q, --quiet        no stats line on stderr\n",
           prog);
}

/* Latency samples (ns, publish -> delivery), kept for exact percentiles. */
typedef struct samples {
    int64_t *v;
    size_t n, cap;
} samples;

#define MAX_SAMPLES ((size_t)1 << 22)

static void samples_add(samples *s, int64_t x) {
    if (s->n == s->cap) {
        if (s->cap >= MAX_SAMPLES) return;
        size_t nc = s->cap ? s->cap * 2 : 4096;
        int64_t *p = (int64_t *)realloc(s->v, nc * sizeof *p);
        if (p == NULL) return;
        s->v = p;
        s->cap = nc;
    }
    s->v[s->n++] = x;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* quantile sorts v[from..to) in place and returns its q-quantile. */
static int64_t quantile(int64_t *v, size_t from, size_t to, double q) {
    if (to <= from) return 0;
    qsort(v + from, to - from, sizeof *v, cmp_i64);
    size_t i = (size_t)(q * (double)(to - from - 1) + 0.5);
    return v[from + i];
}

int main(int argc, char **argv) {
    const char *ring = NULL, *dir = FRAMERING_DEFAULT_DIR, *mode = "all", *start = "newest";
    long long count = 0;
    int verify = 0, view = 0, wait = 0, eof = 0, quiet = 0;
    int64_t timeout = 0, spin = 0;
    cli_args a = {argc, 1, argv, prog, "", NULL};
    while (cli_next(&a)) {
        if (cli_is(&a, "help")) {
            usage();
            return 0;
        } else if (cli_is(&a, "ring")) ring = cli_value(&a);
        else if (cli_is(&a, "dir")) dir = cli_value(&a);
        else if (cli_is(&a, "mode")) mode = cli_value(&a);
        else if (cli_is(&a, "start")) start = cli_value(&a);
        else if (cli_is(&a, "count")) count = cli_int(&a);
        else if (cli_is(&a, "verify")) verify = cli_bool(&a);
        else if (cli_is(&a, "view")) view = cli_bool(&a);
        else if (cli_is(&a, "wait")) wait = cli_bool(&a);
        else if (cli_is(&a, "eof")) eof = cli_bool(&a);
        else if (cli_is(&a, "quiet")) quiet = cli_bool(&a);
        else if (cli_is(&a, "timeout")) timeout = cli_duration(&a);
        else if (cli_is(&a, "spin")) spin = cli_duration(&a);
        else cli_usage_error(prog, "unknown flag: --%s", a.name);
    }
    if (ring == NULL) cli_usage_error(prog, "recv: --ring NAME is required");
    if (framering_check_name(ring) != FRAMERING_OK)
        cli_usage_error(prog, "recv: --ring: invalid ring name \"%s\": use 1 to 200 of A-Z a-z 0-9 . _ -", ring);
    framering_reader_options ro;
    memset(&ro, 0, sizeof ro);
    ro.dir = dir;
    ro.spin_ns = spin;
    if (strcmp(mode, "all") == 0 || strcmp(mode, "ordered") == 0) ro.mode = FRAMERING_ORDERED;
    else if (strcmp(mode, "latest") == 0) ro.mode = FRAMERING_LATEST;
    else cli_usage_error(prog, "recv: --mode \"%s\": use all or latest", mode);
    if (strcmp(start, "newest") == 0) ro.start = FRAMERING_START_NEWEST;
    else if (strcmp(start, "next") == 0) ro.start = FRAMERING_START_NEXT;
    else if (strcmp(start, "oldest") == 0) ro.start = FRAMERING_START_OLDEST;
    else cli_usage_error(prog, "recv: --start \"%s\": use newest, next or oldest", start);
    if (count < 0) cli_usage_error(prog, "recv: --count must not be negative");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop; /* no SA_RESTART */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* Open, waiting for the ring with --wait (every 20 ms, up to --timeout). */
    int64_t open_deadline = timeout > 0 ? framering_now_ns() + timeout : INT64_MAX;
    for (;;) {
        int rc = framering_reader_open(&rd, ring, &ro);
        if (rc == FRAMERING_OK) break;
        if (!wait || (rc != FRAMERING_ERR_NOT_FOUND && rc != FRAMERING_ERR_TRUNCATED)) {
            fprintf(stderr, "%s: %s%s\n", prog, framering_reader_error(&rd),
                    rc == FRAMERING_ERR_NOT_FOUND ? "\n(use --wait to wait for it to appear)" : "");
            return 1;
        }
        if (stop_flag) return 0; /* interrupted while waiting */
        if (framering_now_ns() >= open_deadline) {
            char b[32];
            fprintf(stderr, "%s: ring \"%s\" did not appear within %s in %s; start its producer or check --dir\n", prog,
                    ring, cli_fmt_ns(timeout, b, sizeof b), dir);
            return 1;
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    rd_open = 1;
    if (stop_flag) framering_reader_cancel(&rd);

    samples lat = {NULL, 0, 0};
    size_t tick_from = 0;
    long long got = 0, mismatches = 0;
    char first_bad[256] = "";
    int rc = 0;
    int64_t last_tick = framering_now_ns();
    framering_reader_stats prev;
    framering_reader_stats_get(&rd, &prev);
    while (count == 0 || got < count) {
        framering_frame f;
        int e = view ? framering_reader_acquire(&rd, &f, timeout > 0 ? timeout : -1)
                     : framering_reader_read(&rd, NULL, 0, &f, timeout > 0 ? timeout : -1);
        int64_t at = framering_now_ns();
        if (e == FRAMERING_ERR_CANCELED || (e != FRAMERING_OK && stop_flag)) break;
        if (e == FRAMERING_ERR_WRITER_GONE) {
            fprintf(stderr, "recv: %s\n", framering_reader_error(&rd));
            if (eof) break;
            continue;
        }
        if (e == FRAMERING_ERR_TIMEOUT) {
            char b[32];
            fprintf(stderr, "%s: ring \"%s\": no frame for %s; is the producer running?\n", prog, ring,
                    cli_fmt_ns(timeout, b, sizeof b));
            rc = 1;
            break;
        }
        if (e != FRAMERING_OK) {
            fprintf(stderr, "%s: %s\n", prog, framering_reader_error(&rd));
            rc = 1;
            break;
        }
        int bad = 0;
        char why[256] = "";
        if (verify) bad = framering_pattern_check(f.pixels, (size_t)f.len, f.number, why, sizeof why) != 0;
        if (view) {
            int re = framering_reader_release(&rd);
            if (re == FRAMERING_ERR_OVERWRITTEN) continue; /* counted as dropped; the check saw garbage */
            if (re != FRAMERING_OK) {
                fprintf(stderr, "%s: %s\n", prog, framering_reader_error(&rd));
                rc = 1;
                break;
            }
        }
        got++;
        samples_add(&lat, at - f.publish_ns);
        if (bad) {
            mismatches++;
            if (!first_bad[0]) snprintf(first_bad, sizeof first_bad, "%s", why);
            if (mismatches <= 5) fprintf(stderr, "recv: frame %llu: %s\n", (unsigned long long)f.number, why);
        }
        if (at - last_tick >= 1000000000) {
            framering_reader_stats cur;
            framering_reader_stats_get(&rd, &cur);
            if (!quiet) {
                char b1[32], b2[32];
                double dt = (double)(at - last_tick) / 1e9;
                int64_t p50 = quantile(lat.v, tick_from, lat.n, 0.5), p99 = quantile(lat.v, tick_from, lat.n, 0.99);
                uint64_t dropped = cur.lapped + cur.skipped + cur.overwritten + cur.corrupt;
                fprintf(stderr, "recv \"%s\": %.1f fps, latency p50 %s p99 %s, dropped %llu, frame %llu%s\n", ring,
                        (double)(cur.delivered - prev.delivered) / dt, cli_fmt_ns(p50, b1, sizeof b1),
                        cli_fmt_ns(p99, b2, sizeof b2), (unsigned long long)dropped, (unsigned long long)cur.last,
                        cur.writer_up ? "" : ", writer gone");
            }
            prev = cur;
            tick_from = lat.n;
            last_tick = at;
        }
    }
    framering_reader_stats st;
    framering_reader_stats_get(&rd, &st);
    uint64_t dropped = st.lapped + st.skipped + st.overwritten + st.corrupt;
    printf("summary ring=%s mode=%s read=%s delivered=%llu dropped=%llu lapped=%llu skipped=%llu overwritten=%llu "
           "corrupt=%llu retries=%llu writer_gone=%llu resumes=%llu resets=%llu window_start=%llu last=%llu "
           "considered=%llu verify=%d verified=%lld mismatches=%lld latency_samples=%zu p50_ns=%lld p90_ns=%lld "
           "p99_ns=%lld max_ns=%lld\n",
           ring, ro.mode == FRAMERING_LATEST ? "latest" : "ordered", view ? "view" : "copy",
           (unsigned long long)st.delivered, (unsigned long long)dropped, (unsigned long long)st.lapped,
           (unsigned long long)st.skipped, (unsigned long long)st.overwritten, (unsigned long long)st.corrupt,
           (unsigned long long)st.retries, (unsigned long long)st.writer_gone, (unsigned long long)st.resumes,
           (unsigned long long)st.resets, (unsigned long long)st.window_start, (unsigned long long)st.last,
           (unsigned long long)st.window_frames, verify, verify ? got - mismatches : 0, mismatches, lat.n,
           (long long)quantile(lat.v, 0, lat.n, 0.5), (long long)quantile(lat.v, 0, lat.n, 0.9),
           (long long)quantile(lat.v, 0, lat.n, 0.99), (long long)quantile(lat.v, 0, lat.n, 1.0));
    fflush(stdout);
    rd_open = 0;
    framering_reader_close(&rd);
    free(lat.v);
    if (rc == 0 && mismatches > 0) {
        fprintf(stderr,
                "%s: recv --verify: %lld of %lld frames do not match the test pattern (first: %s); is the producer "
                "'send --pattern'?\n",
                prog, mismatches, got, first_bad);
        rc = 1;
    }
    return rc;
}
