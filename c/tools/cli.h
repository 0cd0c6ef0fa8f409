/* cli.h: what framering-send-c and framering-recv-c share: flag parsing in
 * the style of the Go CLI (--flag value or --flag=value), Go durations
 * ("1.5s", "100ms", "2m"), frame sizes ("WxHxC") and exit statuses
 * (0 ok, 1 failure, 2 usage error). */
#ifndef FRAMERING_CLI_H
#define FRAMERING_CLI_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

/* cli_args walks argv: every flag is --name, --name=value or --name value. */
typedef struct cli_args {
    int argc, i;
    char **argv;
    const char *prog;
    char name[64];      /* the current flag, without dashes */
    const char *inline_value; /* after '=', or NULL */
} cli_args;

__attribute__((format(printf, 2, 3))) static void cli_usage_error(const char *prog, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nrun '%s --help' for usage\n", prog);
    exit(EXIT_USAGE);
}

/* cli_next advances to the next flag; 0 at the end. A non-flag argument is
 * a usage error (the Go CLI takes none either). */
static __attribute__((unused)) int cli_next(cli_args *a) {
    if (a->i >= a->argc) return 0;
    const char *s = a->argv[a->i++];
    if (strcmp(s, "-q") == 0) s = "--quiet";
    if (strcmp(s, "-h") == 0) s = "--help";
    if (strncmp(s, "--", 2) != 0 || s[2] == 0) cli_usage_error(a->prog, "unexpected argument %s", s);
    s += 2;
    const char *eq = strchr(s, '=');
    size_t n = eq ? (size_t)(eq - s) : strlen(s);
    if (n >= sizeof a->name) cli_usage_error(a->prog, "unknown flag --%s", s);
    memcpy(a->name, s, n);
    a->name[n] = 0;
    a->inline_value = eq ? eq + 1 : NULL;
    return 1;
}

static __attribute__((unused)) int cli_is(const cli_args *a, const char *name) { return strcmp(a->name, name) == 0; }

/* cli_value returns the flag's value (inline or the next argument). */
static __attribute__((unused)) const char *cli_value(cli_args *a) {
    if (a->inline_value) return a->inline_value;
    if (a->i >= a->argc) cli_usage_error(a->prog, "flag needs an argument: --%s", a->name);
    return a->argv[a->i++];
}

/* cli_bool accepts --flag, --flag=true/false/1/0. */
static __attribute__((unused)) int cli_bool(cli_args *a) {
    const char *v = a->inline_value;
    if (v == NULL) return 1;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) return 1;
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) return 0;
    cli_usage_error(a->prog, "invalid argument \"%s\" for --%s: use true or false", v, a->name);
    return 0;
}

static __attribute__((unused)) long long cli_int(cli_args *a) {
    const char *v = cli_value(a);
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end) cli_usage_error(a->prog, "invalid argument \"%s\" for --%s: not an integer", v, a->name);
    return n;
}

static __attribute__((unused)) double cli_float(cli_args *a) {
    const char *v = cli_value(a);
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end) cli_usage_error(a->prog, "invalid argument \"%s\" for --%s: not a number", v, a->name);
    return d;
}

/* cli_parse_duration parses a Go duration ("300ms", "1.5s", "1m30s", "0")
 * into ns; -1 if invalid. */
static __attribute__((unused)) int64_t cli_parse_duration(const char *s) {
    if (strcmp(s, "0") == 0) return 0;
    if (*s == 0) return -1;
    double total = 0;
    while (*s) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno || v < 0 || *s == '-' || *s == '+') return -1;
        s = end;
        double unit;
        if (strncmp(s, "ns", 2) == 0) unit = 1, s += 2;
        else if (strncmp(s, "us", 2) == 0) unit = 1e3, s += 2;
        else if (strncmp(s, "\xc2\xb5s", 3) == 0) unit = 1e3, s += 3; /* µs */
        else if (strncmp(s, "ms", 2) == 0) unit = 1e6, s += 2;
        else if (*s == 's') unit = 1e9, s += 1;
        else if (*s == 'm') unit = 60e9, s += 1;
        else if (*s == 'h') unit = 3600e9, s += 1;
        else return -1;
        total += v * unit;
    }
    if (total > 9.2e18) return -1;
    return (int64_t)total;
}

static __attribute__((unused)) int64_t cli_duration(cli_args *a) {
    const char *v = cli_value(a);
    int64_t d = cli_parse_duration(v);
    if (d < 0)
        cli_usage_error(a->prog, "invalid argument \"%s\" for --%s: not a duration (examples: 500ms, 2s, 1m)", v,
                        a->name);
    return d;
}

/* cli_fmt_ns prints a duration the way Go rounds it in the CLI's lines. */
static __attribute__((unused)) const char *cli_fmt_ns(int64_t ns, char *buf, size_t n) {
    if (ns < 0) ns = 0;
    if (ns >= 1000000000) snprintf(buf, n, "%.3fs", (double)ns / 1e9);
    else if (ns >= 1000000) snprintf(buf, n, "%.2fms", (double)ns / 1e6);
    else if (ns >= 1000) snprintf(buf, n, "%.1fus", (double)ns / 1e3);
    else snprintf(buf, n, "%lldns", (long long)ns);
    return buf;
}

/* cli_parse_size parses "WxHxC" or "WxH" (3 channels), as ring.ParseSize. */
static __attribute__((unused)) int cli_parse_size(const char *s, uint32_t *w, uint32_t *h, uint32_t *c, char *why, size_t n) {
    long long v[3] = {0, 0, 3};
    int k = 0;
    const char *p = s;
    while (k < 3) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || x <= 0 || x > (1 << 20)) break;
        v[k++] = x;
        p = end;
        if (*p == 'x' || *p == 'X') {
            p++;
            continue;
        }
        break;
    }
    if (*p != 0 || k < 2) {
        snprintf(why, n, "size \"%s\" is not WxHxC with positive numbers (example: 1920x1080x3)", s);
        return -1;
    }
    if (v[2] > 4) {
        snprintf(why, n, "size \"%s\" has %lld channels; framering knows 1 to 4", s, v[2]);
        return -1;
    }
    *w = (uint32_t)v[0];
    *h = (uint32_t)v[1];
    *c = (uint32_t)v[2];
    return 0;
}

#endif
