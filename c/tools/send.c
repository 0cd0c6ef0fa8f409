/* framering-send-c: `framering send --pattern` in C, on c/framering.h.
 * Creates (or takes over) ring NAME and publishes the checkable test
 * pattern into it, filled in place in loaned slots (--copy: published by
 * copy). Same flags, output and exit statuses as the Go command. */
#define FRAMERING_IMPLEMENTATION
#include "../framering.h"

#include <signal.h>
#include <time.h>

#include "cli.h"

static const char *prog = "framering-send-c";
static volatile sig_atomic_t stop_flag, go_flag;

static void on_stop(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void on_go(int sig) {
    (void)sig;
    go_flag = 1;
}

static void usage(void) {
    printf("usage: %s --ring NAME --pattern WxHxC [flags]\n"
           "\n"
           "Publishes the checkable test pattern of 'framering send --pattern' into ring\n"
           "NAME (created, or taken over if it exists) until --count frames are sent or\n"
           "SIGINT/SIGTERM, then closes the writer (readers see it gone); --remove also\n"
           "unlinks the ring. Prints the ring line and 'sent N frames' to stdout and a\n"
           "stats line per second to stderr. Exit status: 0 ok, 1 failure, 2 usage.\n"
           "\n"
           "flags:\n"
           "  --ring NAME        ring name (required)\n"
           "  --dir DIR          shared-memory directory holding the rings (default /dev/shm)\n"
           "  --pattern WxHxC    frame size: width x height x channels (WxH means 3 channels)\n"
           "  --format FMT       gray8, bgr8, rgb8, bgra8, rgba8, gray16, yuyv, raw\n"
           "                     (default by channels: 1 gray8, 2 yuyv, 3 bgr8, 4 bgra8)\n"
           "  --fps F            frames per second, 0: as fast as possible (default 30)\n"
           "  --count N          stop after N frames, 0: until SIGINT/SIGTERM (default 0)\n"
           "  --slots N          slot count of a new ring, a power of two >= 2 (default 8)\n"
           "  --remove           unlink the ring at exit (default: leave it for readers)\n"
           "  --copy             publish by copy from a private buffer instead of filling\n"
           "                     loaned slots in place\n"
           "  --hold             after opening the ring, wait for SIGUSR1 before the first\n"
           "                     frame (lets a script start its readers first)\n"
           "  -q, --quiet        no stats line on stderr\n",
           prog);
}

int main(int argc, char **argv) {
    const char *ring = NULL, *dir = FRAMERING_DEFAULT_DIR, *pattern = NULL, *format = NULL;
    double fps = 30;
    long long count = 0, slots = 8;
    int remove_at_exit = 0, quiet = 0, copy = 0, hold = 0;
    cli_args a = {argc, 1, argv, prog, "", NULL};
    while (cli_next(&a)) {
        if (cli_is(&a, "help")) {
            usage();
            return 0;
        } else if (cli_is(&a, "ring")) ring = cli_value(&a);
        else if (cli_is(&a, "dir")) dir = cli_value(&a);
        else if (cli_is(&a, "pattern")) pattern = cli_value(&a);
        else if (cli_is(&a, "format")) format = cli_value(&a);
        else if (cli_is(&a, "fps")) fps = cli_float(&a);
        else if (cli_is(&a, "count")) count = cli_int(&a);
        else if (cli_is(&a, "slots")) slots = cli_int(&a);
        else if (cli_is(&a, "remove")) remove_at_exit = cli_bool(&a);
        else if (cli_is(&a, "quiet")) quiet = cli_bool(&a);
        else if (cli_is(&a, "copy")) copy = cli_bool(&a);
        else if (cli_is(&a, "hold")) hold = cli_bool(&a);
        else if (cli_is(&a, "image") || cli_is(&a, "video") || cli_is(&a, "camera"))
            cli_usage_error(prog, "--%s: this sender only makes the test pattern (--pattern); for images, video and "
                                  "cameras use framering-cv-capture or 'framering send'", a.name);
        else cli_usage_error(prog, "unknown flag: --%s", a.name);
    }
    if (ring == NULL) cli_usage_error(prog, "send: --ring NAME is required");
    if (framering_check_name(ring) != FRAMERING_OK)
        cli_usage_error(prog, "send: --ring: invalid ring name \"%s\": use 1 to 200 of A-Z a-z 0-9 . _ -", ring);
    if (pattern == NULL) cli_usage_error(prog, "send: give exactly one source (--pattern), got none");
    if (fps < 0 || count < 0) cli_usage_error(prog, "send: --fps and --count must not be negative");
    if (slots < 2 || slots > 65536 || (slots & (slots - 1)) != 0)
        cli_usage_error(prog, "send: --slots %lld is not a power of two in [2, 65536]", slots);

    char why[256];
    uint32_t w, h, c;
    if (cli_parse_size(pattern, &w, &h, &c, why, sizeof why) != 0) cli_usage_error(prog, "send: --pattern: %s", why);
    static const uint32_t by_channels[5] = {0, FRAMERING_GRAY8, FRAMERING_YUYV, FRAMERING_BGR8, FRAMERING_BGRA8};
    uint32_t fmt = by_channels[c];
    if (format) {
        fmt = framering_parse_format(format);
        if (fmt == FRAMERING_FORMAT_INVALID)
            cli_usage_error(prog, "send: --pattern: unknown pixel format \"%s\"; use one of gray8, bgr8, rgb8, bgra8, "
                                  "rgba8, gray16, yuyv, raw", format);
        if (fmt != FRAMERING_RAW && framering_format_channels(fmt) != c)
            cli_usage_error(prog, "send: --pattern: format %s has %u channels, the size \"%s\" says %u", format,
                            framering_format_channels(fmt), pattern, c);
    }
    framering_frame_info fi;
    memset(&fi, 0, sizeof fi);
    fi.width = w;
    fi.height = h;
    fi.format = fmt;
    uint64_t len = (uint64_t)w * h * c * framering_format_bytes_per_sample(fmt);
    if (fmt == FRAMERING_RAW) fi.len = len;
    if (len < 16) cli_usage_error(prog, "send: --pattern: \"%s\" is %llu bytes; the test pattern needs at least 16",
                                  pattern, (unsigned long long)len);
    if (len > FRAMERING_MAX_PAYLOAD_CAP)
        cli_usage_error(prog, "send: --pattern: \"%s\" is %llu bytes, more than a slot may hold", pattern,
                        (unsigned long long)len);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop; /* no SA_RESTART: sleeps return early */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_go;
    sigaction(SIGUSR1, &sa, NULL);

    uint8_t *buf = NULL;
    if (copy) {
        buf = (uint8_t *)malloc((size_t)len);
        if (buf == NULL) {
            fprintf(stderr, "%s: out of memory for a %llu-byte frame\n", prog, (unsigned long long)len);
            return 1;
        }
    }
    static framering_writer wr; /* large: not on the stack */
    framering_writer_options wo;
    memset(&wo, 0, sizeof wo);
    wo.dir = dir;
    wo.slots = (uint32_t)slots;
    wo.max_frame_bytes = len;
    if (framering_writer_open(&wr, ring, &wo) != FRAMERING_OK) {
        fprintf(stderr, "%s: %s\n", prog, framering_writer_error(&wr));
        free(buf);
        return 1;
    }
    framering_geometry g = framering_writer_geometry(&wr);
    if (fmt == FRAMERING_RAW)
        printf("ring \"%s\": raw %llu bytes, %u slots of %llu bytes, generation %llu, %s\n", ring,
               (unsigned long long)len, g.slots, (unsigned long long)g.payload_cap,
               (unsigned long long)framering_writer_generation(&wr), framering_writer_path(&wr));
    else
        printf("ring \"%s\": %ux%ux%u %s, %u slots of %llu bytes, generation %llu, %s\n", ring, w, h, c,
               framering_format_name(fmt), g.slots, (unsigned long long)g.payload_cap,
               (unsigned long long)framering_writer_generation(&wr), framering_writer_path(&wr));
    fflush(stdout);

    if (hold) {
        sigset_t none;
        sigemptyset(&none);
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGTERM);
        sigprocmask(SIG_BLOCK, &block, &old);
        while (!go_flag && !stop_flag) sigsuspend(&old);
        sigprocmask(SIG_SETMASK, &old, NULL);
    }

    int rc = 0;
    long long sent = 0;
    int64_t period = fps > 0 ? (int64_t)(1e9 / fps) : 0;
    int64_t start = framering_now_ns(), last_t = start;
    long long last_n = 0;
    while (!stop_flag && (count == 0 || sent < count)) {
        if (period > 0) {
            int64_t due = start + sent * period;
            while (!stop_flag && framering_now_ns() < due) {
                struct timespec ts = {(time_t)(due / 1000000000), (long)(due % 1000000000)};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            }
            if (stop_flag) break;
        }
        uint64_t number;
        int e;
        if (copy) {
            framering_pattern_fill(buf, (size_t)len, framering_writer_next(&wr));
            e = framering_writer_publish(&wr, &fi, buf, (size_t)len, &number);
        } else {
            framering_loan *l;
            e = framering_writer_reserve(&wr, &fi, &l);
            if (e == FRAMERING_OK) {
                number = l->number;
                framering_pattern_fill(l->pixels, (size_t)l->len, l->number);
                e = framering_writer_commit(&wr);
                if (e != FRAMERING_OK) framering_writer_abort(&wr);
            }
        }
        if (e != FRAMERING_OK) {
            fprintf(stderr, "%s: %s\n", prog, framering_writer_error(&wr));
            rc = 1;
            break;
        }
        sent++;
        int64_t now = framering_now_ns();
        if (now - last_t >= 1000000000) {
            if (!quiet)
                fprintf(stderr, "send \"%s\": frame %llu, %.1f fps\n", ring, (unsigned long long)number,
                        (double)(sent - last_n) * 1e9 / (double)(now - last_t));
            last_n = sent;
            last_t = now;
        }
    }
    printf("sent %lld frames\n", sent);
    fflush(stdout);
    int ce = remove_at_exit ? framering_writer_remove(&wr) : framering_writer_close(&wr);
    if (ce != FRAMERING_OK) {
        fprintf(stderr, "%s: %s\n", prog, framering_writer_error(&wr));
        rc = 1;
    }
    free(buf);
    return rc;
}
