/* framering.h: a reader and a writer of framering rings (segment format v2)
 * in one header, for C11 and C++17 on Linux (x86-64, arm64). Dependencies:
 * libc and pthreads. The byte-level contract is docs/PROTOCOL.md.
 *
 * USE
 *   In exactly one C or C++ file of your program, before any other include:
 *
 *       #define FRAMERING_IMPLEMENTATION
 *       #include "framering.h"
 *
 *   Everywhere else just #include "framering.h". Build with -pthread.
 *   (The implementation needs _GNU_SOURCE for O_TMPFILE, F_OFD_GETLK,
 *   fallocate and linkat; the header defines it when FRAMERING_IMPLEMENTATION
 *   is set, which only works if nothing was included before it. Otherwise
 *   compile that file with -D_GNU_SOURCE.) It uses the GCC/Clang __atomic
 *   builtins, so it needs GCC or Clang.
 *
 *   Writer:
 *       framering_writer w;
 *       framering_writer_options wo = {0};          // C++: framering_writer_options wo{};
 *       wo.max_frame_bytes = 1920 * 1080 * 3;
 *       if (framering_writer_open(&w, "cam0", &wo) != FRAMERING_OK) {
 *           fprintf(stderr, "%s\n", framering_writer_error(&w));
 *           return 1;
 *       }
 *       framering_frame_info fi = {0};
 *       fi.width = 1920; fi.height = 1080; fi.format = FRAMERING_BGR8;
 *       framering_loan *l;
 *       if (framering_writer_reserve(&w, &fi, &l) == FRAMERING_OK) {
 *           fill(l->pixels, l->len, l->stride);           // exactly l->len bytes
 *           l->meta_len = write_detections(l->meta, l->meta_cap);
 *           framering_writer_commit(&w);                  // or framering_writer_abort(&w)
 *       }
 *       framering_writer_close(&w);                       // the file stays; _remove unlinks it
 *
 *   Reader:
 *       framering_reader r;
 *       framering_reader_options ro = {0};               // ordered, newest, no spin
 *       if (framering_reader_open(&r, "cam0", &ro) != FRAMERING_OK) { ... }
 *       framering_frame f;
 *       int rc = framering_reader_read(&r, NULL, 0, &f, 5000000000);  // 5 s
 *       // rc: FRAMERING_OK (f.pixels: a private copy, valid until the next
 *       // read), FRAMERING_ERR_TIMEOUT, FRAMERING_ERR_WRITER_GONE (once; the
 *       // next read waits for a writer to come back), FRAMERING_ERR_CORRUPT
 *       // (a frame was skipped), ...
 *       rc = framering_reader_acquire(&r, &f, -1);        // in place: f.pixels aliases the slot
 *       work(f.pixels);
 *       rc = framering_reader_release(&r);                // FRAMERING_ERR_OVERWRITTEN: discard the work
 *       framering_reader_close(&r);
 *
 * HANDLES AND THREADS
 *   A handle (framering_reader, framering_writer) is storage the caller
 *   provides; open initializes it, close releases everything it holds. Do
 *   not copy or move an open handle. A failed open leaves the handle closed
 *   (close is still allowed) with the error in it. The library keeps no
 *   global state.
 *   Reader: one thread reads (read, acquire, release). From any thread:
 *   framering_reader_stats, framering_reader_cancel (also from a signal
 *   handler) and framering_reader_close (it wakes a blocked read, waits for
 *   it to return, then unmaps; a view still out becomes invalid).
 *   Writer: one thread at a time calls reserve/commit/abort/publish/close;
 *   framering_writer_stats from any thread. A heartbeat thread of the
 *   writer stamps the superblock every heartbeat period (signals blocked).
 *
 * ERRORS
 *   Every call that can fail returns FRAMERING_OK (0) or a FRAMERING_ERR_*
 *   code, and leaves a sentence in the handle that says what happened and
 *   what to do (framering_reader_error, framering_writer_error;
 *   handle.err.sys_errno holds errno for FRAMERING_ERR_SYSTEM). Nothing
 *   calls abort() or exit(), nothing writes to stderr.
 *
 * SHARED MEMORY IS UNTRUSTED
 *   Every superblock and slot-header field is validated before it is used
 *   for addressing (PROTOCOL.md §11); a torn, corrupt or hostile file gives
 *   an error, never a crash, and no call spins or blocks forever on it.
 *   One thing the library does not catch: if the file is truncated under a
 *   mapping (by another program: a framering writer never shrinks a live
 *   ring), touching the lost pages raises SIGBUS, which kills the process
 *   unless you handle it. The library installs no signal handler. A
 *   program that must survive that can install a SIGBUS handler that
 *   siglongjmps out of its own calls and then closes and re-opens the
 *   handle (the writer: close, then open again).
 */
#if defined(FRAMERING_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#ifndef FRAMERING_H
#define FRAMERING_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- limits */

#define FRAMERING_LAYOUT_VERSION 2    /* the segment format this header speaks */
#define FRAMERING_DEFAULT_DIR "/dev/shm"
#define FRAMERING_MAX_NAME 200        /* ring names: 1..200 of [A-Za-z0-9._-], not "." or ".." */
#define FRAMERING_PATH_MAX 4096
#define FRAMERING_MSG_MAX 512
#define FRAMERING_MIN_SLOTS 2
#define FRAMERING_MAX_SLOTS 65536
#define FRAMERING_MAX_PAYLOAD_CAP ((uint64_t)1 << 34)
#define FRAMERING_MAX_META_CAP ((uint32_t)1 << 20)
#define FRAMERING_MAX_FILE_SIZE ((uint64_t)1 << 40)

/* ---------------------------------------------------------- status codes */

#define FRAMERING_OK 0
#define FRAMERING_ERR_INVALID 1       /* bad argument: name, option, frame shape */
#define FRAMERING_ERR_NOT_FOUND 2     /* the ring does not exist */
#define FRAMERING_ERR_UNSAFE 3        /* symlink, not a regular file, other owner, world/group-writable */
#define FRAMERING_ERR_PERMISSION 4    /* the file system said EACCES/EPERM */
#define FRAMERING_ERR_TRUNCATED 5     /* the file is smaller than a ring of its geometry */
#define FRAMERING_ERR_INCOMPATIBLE 6  /* not a framering v2 ring (magic, version, flags, superblock size) */
#define FRAMERING_ERR_CORRUPT 7       /* checksum, geometry, a frame header or Head out of range */
#define FRAMERING_ERR_BUSY 8          /* another writer holds the ring */
#define FRAMERING_ERR_NO_SPACE 9      /* the shared-memory file system is full */
#define FRAMERING_ERR_TOO_LARGE 10    /* a frame or metadata larger than a slot or buffer */
#define FRAMERING_ERR_OUTSTANDING 11  /* a loan or view is still out */
#define FRAMERING_ERR_TIMEOUT 12      /* no frame (or no writer) within the timeout */
#define FRAMERING_ERR_WRITER_GONE 13  /* the writer died, closed or hung; returned once */
#define FRAMERING_ERR_OVERWRITTEN 14  /* a view's slot was overwritten before release */
#define FRAMERING_ERR_CANCELED 15     /* framering_reader_cancel was called */
#define FRAMERING_ERR_CLOSED 16       /* the handle is closed */
#define FRAMERING_ERR_SYSTEM 17       /* a system call failed; err.sys_errno says which errno */

/* ---------------------------------------------------------- pixel formats */

#define FRAMERING_FORMAT_INVALID 0
#define FRAMERING_GRAY8 1   /* 1 channel */
#define FRAMERING_BGR8 2    /* 3 channels, OpenCV's order */
#define FRAMERING_RGB8 3
#define FRAMERING_BGRA8 4
#define FRAMERING_RGBA8 5
#define FRAMERING_GRAY16 6  /* 1 channel, 16-bit little-endian samples */
#define FRAMERING_YUYV 7    /* 2 channels: Y then U (even x) or V (odd x) */
#define FRAMERING_RAW 8     /* opaque bytes: only the length counts */

/* ------------------------------------------------------- reader settings */

#define FRAMERING_ORDERED 0       /* every frame in order; count the ones lapped */
#define FRAMERING_LATEST 1        /* the newest frame; count the ones skipped */

#define FRAMERING_START_NEWEST 0  /* the newest frame at open, else frame 1 */
#define FRAMERING_START_NEXT 1    /* the first frame published after open */
#define FRAMERING_START_OLDEST 2  /* the oldest frame still in the ring */

typedef struct framering_error {
    int code;                     /* the last FRAMERING_* code returned */
    int sys_errno;                /* errno behind FRAMERING_ERR_SYSTEM (and others), else 0 */
    char msg[FRAMERING_MSG_MAX];  /* what happened and what to do; "" after success */
} framering_error;

typedef struct framering_geometry {
    uint32_t slots;               /* N, a power of two */
    uint32_t meta_cap;            /* metadata bytes per slot */
    uint64_t payload_cap;         /* payload bytes per slot */
    uint64_t payload_offset;      /* derived, PROTOCOL.md §4 */
    uint64_t slot_stride;
    uint64_t file_size;
} framering_geometry;

/* framering_frame_info describes a frame a writer publishes. */
typedef struct framering_frame_info {
    uint32_t width, height;       /* pixels, 1..1048576 (raw: any value) */
    uint32_t channels;            /* 0: the format's own count */
    uint32_t format;              /* FRAMERING_GRAY8 ... FRAMERING_RAW */
    uint32_t stride;              /* bytes per row; 0: packed rows */
    uint64_t len;                 /* raw only: payload bytes (images: stride*height) */
    int64_t capture_ns;           /* CLOCK_MONOTONIC capture time; 0: the publish time */
    const void *meta;             /* publish only: metadata copied with the frame */
    uint32_t meta_len;            /* publish only: bytes at meta */
} framering_frame_info;

/* framering_frame is a frame as a reader gets it. */
typedef struct framering_frame {
    uint64_t number;              /* 1, 2, 3, ...; never reused by a ring */
    uint64_t generation;          /* the generation of the writer that wrote it */
    uint32_t width, height, channels, format, stride;
    uint32_t meta_len;
    uint64_t len;                 /* payload bytes */
    int64_t publish_ns;           /* CLOCK_MONOTONIC when the writer started publishing it */
    int64_t capture_ns;           /* CLOCK_MONOTONIC capture time */
    int64_t wall_ns;              /* wall clock (Unix ns) at commit */
    /* read: pixels is the caller's buffer (or the reader's, if dst was
     * NULL) and meta the reader's buffer, valid until the next call on the
     * reader. acquire: both alias the slot (read-only memory), valid until
     * release, and trustworthy only if release returns FRAMERING_OK. */
    const uint8_t *pixels;
    const uint8_t *meta;
} framering_frame;

typedef struct framering_reader_options {
    const char *dir;              /* NULL: /dev/shm (copied at open) */
    int mode;                     /* FRAMERING_ORDERED (0) or FRAMERING_LATEST */
    int start;                    /* FRAMERING_START_NEWEST (0), _NEXT, _OLDEST */
    int64_t spin_ns;              /* busy-poll this long before sleeping; 0: never */
    int64_t wait_slice_ns;        /* longest futex sleep between liveness checks; 0: 100 ms */
    int64_t hung_after_ns;        /* heartbeat age that means "hung"; 0: 1 s */
    int allow_group_writable;     /* accept a 0660 ring */
    int allow_other_owner;        /* accept a ring owned by another uid (e.g. 0640 for your group) */
} framering_reader_options;

/* framering_reader_stats: for every reader, delivered + dropped ==
 * window_frames, the frames published in its windows (a window starts at
 * open and after each reset). dropped = lapped + skipped + overwritten +
 * corrupt. */
typedef struct framering_reader_stats {
    uint64_t delivered;           /* frames returned (read) or released valid (view) */
    uint64_t lapped;              /* ordered: overwritten before the reader got to them */
    uint64_t skipped;             /* latest: passed over for a newer one */
    uint64_t overwritten;         /* views whose slot was overwritten before release */
    uint64_t corrupt;             /* frames whose slot failed validation (each returned an error) */
    uint64_t retries;             /* attempts thrown away: seq odd at the start or moved by the end */
    uint64_t writer_gone;         /* times FRAMERING_ERR_WRITER_GONE was returned */
    uint64_t resumes;             /* times a writer came back (same file or a new one) */
    uint64_t resets;              /* times the numbering started again (ring recreated from scratch) */
    uint64_t lag;                 /* frames between the last delivered one and the head then */
    uint64_t window_start;        /* first frame number of the current window */
    uint64_t last;                /* last frame number considered (delivered or dropped) */
    uint64_t window_frames;       /* frames in all windows so far: == delivered + dropped */
    int writer_up;                /* 0 between writer-gone and resume */
} framering_reader_stats;

/* The reader handle. Its fields are private, except err. */
typedef struct framering_reader {
    framering_error err;
    char name[FRAMERING_MAX_NAME + 1];
    char path[FRAMERING_PATH_MAX];
    framering_reader_options opts;
    int is_open;
    int fd;
    uint8_t *base;                /* read-only mapping of geo.file_size bytes */
    uint64_t dev, ino;
    framering_geometry geo;
    uint8_t *meta_buf;            /* meta_cap bytes: metadata of the last read */
    uint8_t *pay_buf;             /* payload of reads with dst == NULL */
    uint64_t pay_buf_cap;
    uint64_t next, head_seen;
    int started, gone;
    uint64_t gone_gen;            /* Generation when the writer was declared gone (§10) */
    int gone_hung;                /* ... and whether it was hung then (lock held, heartbeat stale) */
    uint64_t probe_gen;           /* what the last liveness probe saw: Generation, */
    int probe_hung;               /* and hung (the lock held, the heartbeat stale) */
    int view_out;
    uint64_t view_number, view_seq;
    int64_t view_at;
    uint64_t torn_n, torn_run;
    uint64_t closed_windows;      /* frames of windows closed by resets */
    framering_reader_stats st;    /* atomically updated */
    int closed_flag, cancel_flag; /* atomics */
    pthread_mutex_t mu;
} framering_reader;

/* ------------------------------------------------------- writer settings */

typedef struct framering_writer_options {
    const char *dir;              /* NULL: /dev/shm */
    uint32_t slots;               /* power of two in [2, 65536]; 0: 8 */
    uint64_t max_frame_bytes;     /* payload capacity of a slot; required */
    int64_t meta_bytes;           /* metadata capacity of a slot; 0: 4096, < 0: none */
    uint32_t mode;                /* permission bits of a new file; 0: 0600. 0640 lets a group
                                     read, 0660 write; world-writable is refused */
    int64_t heartbeat_ns;         /* heartbeat period; 0: 100 ms */
} framering_writer_options;

/* framering_loan is a reserved slot. Fill pixels (exactly len bytes, rows
 * stride apart) and up to meta_cap bytes of meta, set meta_len (and
 * capture_ns if you know it), then commit or abort. pixels and meta alias
 * shared memory and are valid until commit or abort. While a loan is out
 * readers skip its slot. */
typedef struct framering_loan {
    uint64_t number;              /* the frame number commit publishes */
    uint8_t *pixels;              /* the slot's payload, page-aligned */
    uint64_t len;                 /* bytes of this frame: stride*height (raw: len) */
    uint32_t width, height, channels, format, stride;
    uint8_t *meta;                /* the slot's metadata area */
    uint32_t meta_cap;
    uint32_t meta_len;            /* in: metadata bytes written at meta */
    int64_t capture_ns;           /* in: CLOCK_MONOTONIC capture time; 0: the commit time */
} framering_loan;

typedef struct framering_writer_stats {
    uint64_t frames;              /* frames this writer committed */
    uint64_t bytes;               /* payload bytes this writer committed */
    uint64_t aborts;              /* loans rolled back */
    uint64_t generation;          /* this writer's generation (1: the ring's first writer) */
    uint64_t head;                /* the newest committed frame number */
} framering_writer_stats;

/* The writer handle. Its fields are private, except err. */
typedef struct framering_writer {
    framering_error err;
    char name[FRAMERING_MAX_NAME + 1];
    char dir[FRAMERING_PATH_MAX];
    char path[FRAMERING_PATH_MAX];
    int is_open;
    int fd;
    uint8_t *base;                /* read-write mapping of geo.file_size bytes */
    uint64_t dev, ino;
    framering_geometry geo;
    uint32_t mode;
    int64_t heartbeat_ns;
    uint64_t gen, next;
    framering_loan loan;
    int loan_active;
    uint64_t loan_odd;
    int64_t loan_start;
    uint64_t frames, bytes, aborts, head; /* atomics, for stats */
    pthread_t hb_thread;
    pthread_mutex_t hb_mu;
    pthread_cond_t hb_cond;
    int hb_running, hb_stop;
} framering_writer;

/* ----------------------------------------------------------------- reader */

/* framering_reader_open opens ring name read-only with every check of
 * PROTOCOL.md §2 and §11. opts may be NULL (defaults). */
int framering_reader_open(framering_reader *r, const char *name, const framering_reader_options *opts);
/* framering_reader_open_wait is open, but retries every 20 ms while the
 * ring does not exist or is still being created, up to timeout_ns (< 0:
 * forever). */
int framering_reader_open_wait(framering_reader *r, const char *name, const framering_reader_options *opts,
                               int64_t timeout_ns);
/* framering_reader_read waits for the next frame (per mode), copies it
 * into dst (cap bytes; dst NULL: a buffer of the reader's) and describes it
 * in f. timeout_ns < 0 waits forever, 0 does not wait. A frame the writer
 * changed during the copy is never returned. */
int framering_reader_read(framering_reader *r, void *dst, size_t cap, framering_frame *f, int64_t timeout_ns);
/* framering_reader_acquire waits like read and returns the frame in place
 * (no copy). Call framering_reader_release when done; until then read and
 * acquire fail with FRAMERING_ERR_OUTSTANDING. */
int framering_reader_acquire(framering_reader *r, framering_frame *f, int64_t timeout_ns);
/* framering_reader_release ends the view: FRAMERING_OK if the slot held the
 * frame unchanged since acquire, FRAMERING_ERR_OVERWRITTEN otherwise (then
 * everything computed from the view is garbage; counted as overwritten). */
int framering_reader_release(framering_reader *r);
/* framering_reader_cancel makes a blocked read or acquire return
 * FRAMERING_ERR_CANCELED (within one wait slice), or the next one if none is
 * blocked. Any thread; async-signal-safe. */
void framering_reader_cancel(framering_reader *r);
int framering_reader_close(framering_reader *r);
void framering_reader_stats_get(framering_reader *r, framering_reader_stats *st);
/* The geometry of the segment mapped now (it changes when a writer replaces
 * the ring with another geometry). */
framering_geometry framering_reader_geometry(const framering_reader *r);
const char *framering_reader_error(const framering_reader *r);

/* ----------------------------------------------------------------- writer */

/* framering_writer_open creates ring name or takes it over (PROTOCOL.md §7):
 * same geometry in place, otherwise a new file renamed over the old one,
 * with the frame numbering carried over. */
int framering_writer_open(framering_writer *w, const char *name, const framering_writer_options *opts);
/* framering_writer_reserve lends the next slot for a frame of shape info
 * (info->meta and meta_len are ignored: write metadata at loan->meta). */
int framering_writer_reserve(framering_writer *w, const framering_frame_info *info, framering_loan **loan);
/* framering_writer_commit publishes the loan as frame loan->number and wakes
 * readers. On error (meta_len too large) the loan stays out. */
int framering_writer_commit(framering_writer *w);
/* framering_writer_abort rolls the loan back: the slot becomes empty and the
 * number is reused by the next frame. Does nothing without a loan. */
void framering_writer_abort(framering_writer *w);
/* framering_writer_publish copies size bytes of pixels (at least the
 * frame's length) and info->meta into the next slot and commits it. For raw,
 * info->len 0 means size. number, if not NULL, receives the frame number. */
int framering_writer_publish(framering_writer *w, const framering_frame_info *info, const void *pixels,
                             size_t size, uint64_t *number);
/* framering_writer_close rolls back an open loan, stops the heartbeat,
 * releases the lock and wakes readers (they see the writer gone). The file
 * stays. framering_writer_remove also unlinks it (if the name still is
 * this writer's file). */
int framering_writer_close(framering_writer *w);
int framering_writer_remove(framering_writer *w);
void framering_writer_stats_get(framering_writer *w, framering_writer_stats *st);
framering_geometry framering_writer_geometry(const framering_writer *w);
uint64_t framering_writer_generation(const framering_writer *w);
/* The number the next reserve or publish gets (the head + 1). */
uint64_t framering_writer_next(const framering_writer *w);
const char *framering_writer_path(const framering_writer *w);
const char *framering_writer_error(const framering_writer *w);

/* ---------------------------------------------------------------- helpers */

/* 0 if name is a valid ring name, else FRAMERING_ERR_INVALID. */
int framering_check_name(const char *name);
/* The format's name ("bgr8"), or "unknown". */
const char *framering_format_name(uint32_t format);
/* The format number for a name, or FRAMERING_FORMAT_INVALID. */
uint32_t framering_parse_format(const char *name);
/* The format's channel count (0 for raw and unknown) and bytes per sample. */
uint32_t framering_format_channels(uint32_t format);
uint32_t framering_format_bytes_per_sample(uint32_t format);
/* The code's name, e.g. "FRAMERING_ERR_BUSY". */
const char *framering_code_name(int code);
/* CLOCK_MONOTONIC in ns: the clock of publish_ns and capture_ns. */
int64_t framering_now_ns(void);
/* CRC-32C (Castagnoli) of n bytes: the superblock checksum and the test
 * pattern's. Uses the CPU's instruction where there is one. */
uint32_t framering_crc32c(const void *p, size_t n);
/* The geometry of a ring of these capacities (derived fields filled in),
 * or FRAMERING_ERR_INVALID if out of range. */
int framering_geometry_make(uint32_t slots, uint64_t payload_cap, uint32_t meta_cap, framering_geometry *g);

/* The test pattern of `framering send --pattern` (PROTOCOL.md, appendix A):
 * a frame of n >= 16 bytes with number f holds f (u64 LE) at 0, the CRC-32C
 * of bytes 16..n-1 (u32 LE) at 8, n (u32 LE) at 12, and (i >> 4) + f mod 256
 * at every byte i >= 16. */
void framering_pattern_fill(uint8_t *b, size_t n, uint64_t f);
/* 0 if b[0..n) is exactly frame f's pattern, else -1 with a reason in why. */
int framering_pattern_check(const uint8_t *b, size_t n, uint64_t f, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif
#endif /* FRAMERING_H */

/* ======================================================================== */
/*                              IMPLEMENTATION                              */
/* ======================================================================== */

#if defined(FRAMERING_IMPLEMENTATION) && !defined(FRAMERING_IMPLEMENTATION_DONE)
#define FRAMERING_IMPLEMENTATION_DONE 1

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#define FR__HAVE_GETRANDOM 1
#endif
#endif

#if !defined(__USE_GNU) && !defined(__cplusplus)
#error "framering.h: the implementation needs _GNU_SOURCE: include framering.h with FRAMERING_IMPLEMENTATION defined before any other header, or compile with -D_GNU_SOURCE"
#endif
#if !defined(__GNUC__)
#error "framering.h needs GCC or Clang (__atomic builtins)"
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "framering rings are little-endian; this host is not"
#endif

#define FR__CAST(T, v) ((T)(v))
#ifdef __cplusplus
#define FR__STATIC_ASSERT(c, m) static_assert(c, m)
extern "C" {
#else
#define FR__STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

#define FR__UNUSED __attribute__((unused))

/* --- layout (PROTOCOL.md §3, §4) --- */
#define FR__PAGE 4096u
#define FR__SB_SIZE 4096u
#define FR__HDR_SIZE 128u
#define FR__SB_VERSION 8
#define FR__SB_SUPERSIZE 12
#define FR__SB_SLOTS 16
#define FR__SB_METACAP 20
#define FR__SB_STRIDE 24
#define FR__SB_PAYOFF 32
#define FR__SB_PAYCAP 40
#define FR__SB_FILESIZE 48
#define FR__SB_FLAGS 56
#define FR__SB_CHECKSUM 60
#define FR__SB_PID 64
#define FR__SB_START 72
#define FR__SB_GEN 80
#define FR__SB_CREATED 88
#define FR__SB_HEARTBEAT 128
#define FR__SB_HEAD 192
#define FR__SB_NOTIFY 200
#define FR__SB_FRAMES 256
#define FR__SB_BYTES 264
#define FR__CHECKSUM_LEN 60
#define FR__HALF ((uint64_t)1 << 63) /* Head, FrameNo, Generation at or above this are absurd */
#define FR__TORN_PROBE 1000          /* consecutive torn attempts on one frame before a liveness probe */

static const char fr__magic[8] = {'F', 'R', 'M', 'R', 'I', 'N', 'G', 0};

/* The slot header (PROTOCOL.md §4). Only ever copied out of, or stored
 * field by field into, shared memory; seq is accessed atomically in place. */
typedef struct fr__hdr {
    uint64_t seq;
    uint64_t frame_no;
    uint64_t generation;
    uint32_t width;
    uint32_t height;
    uint32_t channels;
    uint32_t format;
    uint32_t stride;
    uint32_t meta_len;
    uint64_t payload_len;
    int64_t publish_ns;
    int64_t capture_ns;
    int64_t wall_ns;
    uint8_t reserved[48];
} fr__hdr;
FR__STATIC_ASSERT(sizeof(fr__hdr) == 128, "slot header is 128 bytes");
FR__STATIC_ASSERT(offsetof(fr__hdr, width) == 24, "Width at 24");
FR__STATIC_ASSERT(offsetof(fr__hdr, meta_len) == 44, "MetaLen at 44");
FR__STATIC_ASSERT(offsetof(fr__hdr, payload_len) == 48, "PayloadLen at 48");
FR__STATIC_ASSERT(offsetof(fr__hdr, wall_ns) == 72, "WallNs at 72");

/* --- atomics on shared words (GCC/Clang builtins, valid in C and C++) --- */
#define FR__LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define FR__LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define FR__STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define FR__STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define FR__ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define FR__ADD_RELAXED(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

static inline uint64_t *fr__u64(uint8_t *base, size_t off) { return FR__CAST(uint64_t *, (void *)(base + off)); }
static inline int64_t *fr__i64(uint8_t *base, size_t off) { return FR__CAST(int64_t *, (void *)(base + off)); }
static inline uint32_t *fr__u32(uint8_t *base, size_t off) { return FR__CAST(uint32_t *, (void *)(base + off)); }

static inline uint64_t fr__le64(const uint8_t *b) { uint64_t v; memcpy(&v, b, 8); return v; }
static inline uint32_t fr__le32(const uint8_t *b) { uint32_t v; memcpy(&v, b, 4); return v; }
static inline void fr__put64(uint8_t *b, uint64_t v) { memcpy(b, &v, 8); }
static inline void fr__put32(uint8_t *b, uint32_t v) { memcpy(b, &v, 4); }

static inline void fr__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static int64_t fr__clock(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t framering_now_ns(void) { return fr__clock(CLOCK_MONOTONIC); }

/* --- errors --- */

__attribute__((format(printf, 4, 5))) static int fr__fail(framering_error *e, int code, int sys_errno,
                                                           const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
    e->sys_errno = sys_errno;
    return code;
}

static int fr__ok(framering_error *e) {
    e->code = FRAMERING_OK;
    e->sys_errno = 0;
    e->msg[0] = 0;
    return FRAMERING_OK;
}

const char *framering_code_name(int code) {
    static const char *const names[] = {
        "FRAMERING_OK",           "FRAMERING_ERR_INVALID",     "FRAMERING_ERR_NOT_FOUND",
        "FRAMERING_ERR_UNSAFE",   "FRAMERING_ERR_PERMISSION",  "FRAMERING_ERR_TRUNCATED",
        "FRAMERING_ERR_INCOMPATIBLE", "FRAMERING_ERR_CORRUPT", "FRAMERING_ERR_BUSY",
        "FRAMERING_ERR_NO_SPACE", "FRAMERING_ERR_TOO_LARGE",   "FRAMERING_ERR_OUTSTANDING",
        "FRAMERING_ERR_TIMEOUT",  "FRAMERING_ERR_WRITER_GONE", "FRAMERING_ERR_OVERWRITTEN",
        "FRAMERING_ERR_CANCELED", "FRAMERING_ERR_CLOSED",      "FRAMERING_ERR_SYSTEM",
    };
    if (code < 0 || (size_t)code >= sizeof names / sizeof names[0]) return "FRAMERING_ERR_UNKNOWN";
    return names[code];
}

/* --- names, formats, geometry --- */

int framering_check_name(const char *name) {
    if (name == NULL) return FRAMERING_ERR_INVALID;
    size_t n = strlen(name);
    if (n == 0 || n > FRAMERING_MAX_NAME) return FRAMERING_ERR_INVALID;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return FRAMERING_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return FRAMERING_ERR_INVALID;
    }
    return FRAMERING_OK;
}

static const char *const fr__format_names[] = {"invalid", "gray8", "bgr8", "rgb8", "bgra8",
                                               "rgba8",   "gray16", "yuyv", "raw"};
static const uint32_t fr__format_channels[] = {0, 1, 3, 3, 4, 4, 1, 2, 0};

const char *framering_format_name(uint32_t format) {
    return format <= FRAMERING_RAW ? fr__format_names[format] : "unknown";
}

uint32_t framering_parse_format(const char *name) {
    if (name == NULL) return FRAMERING_FORMAT_INVALID;
    for (uint32_t i = 1; i <= FRAMERING_RAW; i++)
        if (strcasecmp(name, fr__format_names[i]) == 0) return i;
    return FRAMERING_FORMAT_INVALID;
}

uint32_t framering_format_channels(uint32_t format) {
    return format <= FRAMERING_RAW ? fr__format_channels[format] : 0;
}

uint32_t framering_format_bytes_per_sample(uint32_t format) { return format == FRAMERING_GRAY16 ? 2 : 1; }

static uint64_t fr__align(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

int framering_geometry_make(uint32_t slots, uint64_t payload_cap, uint32_t meta_cap, framering_geometry *g) {
    memset(g, 0, sizeof *g);
    if (slots < FRAMERING_MIN_SLOTS || slots > FRAMERING_MAX_SLOTS || (slots & (slots - 1)) != 0)
        return FRAMERING_ERR_INVALID;
    if (payload_cap < 1 || payload_cap > FRAMERING_MAX_PAYLOAD_CAP) return FRAMERING_ERR_INVALID;
    if (meta_cap > FRAMERING_MAX_META_CAP) return FRAMERING_ERR_INVALID;
    g->slots = slots;
    g->payload_cap = payload_cap;
    g->meta_cap = meta_cap;
    g->payload_offset = fr__align(FR__HDR_SIZE + (uint64_t)meta_cap, FR__PAGE);
    g->slot_stride = g->payload_offset + fr__align(payload_cap, FR__PAGE);
    g->file_size = FR__SB_SIZE + (uint64_t)slots * g->slot_stride; /* <= 4096 + 2^16 * (2^21 + 2^34): no overflow */
    if (g->file_size > FRAMERING_MAX_FILE_SIZE) return FRAMERING_ERR_INVALID;
    return FRAMERING_OK;
}

static int fr__same_geometry(const framering_geometry *a, const framering_geometry *b) {
    return a->slots == b->slots && a->payload_cap == b->payload_cap && a->meta_cap == b->meta_cap;
}

/* --- CRC-32C --- */

static const uint32_t fr__crc_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu, 0x26a1e7e8u, 0xd4ca64ebu,
    0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu, 0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u, 0x5e133c24u,
    0x105ec76fu, 0xe235446cu, 0xf165b798u, 0x030e349bu, 0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u,
    0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu, 0xbc267848u, 0x4e4dfb4bu,
    0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u, 0x33ed7d2au, 0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u,
    0xaa64d611u, 0x580f5512u, 0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau,
    0x30e349b1u, 0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu, 0x1642ae59u, 0xe4292d5au,
    0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au, 0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u,
    0x417b1dbcu, 0xb3109ebfu, 0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u, 0x67dafa54u, 0x95b17957u,
    0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu, 0xed03a29bu, 0x1f682198u,
    0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u, 0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u,
    0xdbfc821cu, 0x2997011fu, 0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u,
    0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu, 0x4767748au, 0xb50cf789u,
    0xeb1fcbadu, 0x197448aeu, 0x0a24bb5au, 0xf84f3859u, 0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u,
    0x7198540du, 0x83f3d70eu, 0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu, 0xdde0eb2au, 0x2f8b6829u,
    0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu, 0x456cac67u, 0xb7072f64u, 0xa457dc90u, 0x563c5f93u,
    0x082f63b7u, 0xfa44e0b4u, 0xe9141340u, 0x1b7f9043u, 0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu,
    0x92a8fc17u, 0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu, 0xb4091bffu, 0x466298fcu,
    0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu, 0x0b21572cu, 0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u,
    0xa24bb5a6u, 0x502036a5u, 0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u, 0x0e330a81u, 0xfc588982u,
    0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du, 0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u,
    0x38cc2a06u, 0xcaa7a905u, 0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu,
    0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u, 0xe52cc12cu, 0x1747422fu,
    0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu, 0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u,
    0xd3d3e1abu, 0x21b862a8u, 0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u,
    0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u, 0x7fab5e8cu, 0x8dc0dd8fu,
    0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu, 0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u, 0x37faccf1u,
    0x69e9f0d5u, 0x9b8273d6u, 0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au, 0xc69f7b69u, 0xd5cf889du, 0x27a40b9eu,
    0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu, 0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

static uint32_t fr__crc_sw(uint32_t c, const uint8_t *p, size_t n) {
    while (n--) c = fr__crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t fr__crc_hw(uint32_t c, const uint8_t *p, size_t n) {
    uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
    }
    c = (uint32_t)c64;
    for (; n > 0; n--, p++) c = __builtin_ia32_crc32qi(c, *p);
    return c;
}
#define FR__HAVE_CRC_HW() __builtin_cpu_supports("sse4.2")
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
static uint32_t fr__crc_hw(uint32_t c, const uint8_t *p, size_t n) {
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_aarch64_crc32cx(c, v);
    }
    for (; n > 0; n--, p++) c = __builtin_aarch64_crc32cb(c, *p);
    return c;
}
#define FR__HAVE_CRC_HW() 1
#else
#define FR__HAVE_CRC_HW() 0
#define fr__crc_hw fr__crc_sw
#endif

uint32_t framering_crc32c(const void *p, size_t n) {
    const uint8_t *b = FR__CAST(const uint8_t *, p);
    if (FR__HAVE_CRC_HW()) return fr__crc_hw(0xFFFFFFFFu, b, n) ^ 0xFFFFFFFFu;
    return fr__crc_sw(0xFFFFFFFFu, b, n) ^ 0xFFFFFFFFu;
}

/* --- the test pattern (PROTOCOL.md appendix A) --- */

void framering_pattern_fill(uint8_t *b, size_t n, uint64_t f) {
    if (n < 16) return;
    size_t i = 16;
    for (; i + 16 <= n; i += 16) memset(b + i, (int)(uint8_t)((i >> 4) + f), 16);
    for (; i < n; i++) b[i] = (uint8_t)((i >> 4) + f);
    fr__put64(b, f);
    fr__put32(b + 8, framering_crc32c(b + 16, n - 16));
    fr__put32(b + 12, (uint32_t)n);
}

int framering_pattern_check(const uint8_t *b, size_t n, uint64_t f, char *why, size_t why_len) {
    char dummy[1];
    if (why == NULL || why_len == 0) {
        why = dummy;
        why_len = sizeof dummy;
    }
    if (n < 16) {
        snprintf(why, why_len, "frame of %zu bytes is shorter than the 16-byte pattern header", n);
        return -1;
    }
    uint64_t got = fr__le64(b);
    if (fr__le32(b + 12) != (uint32_t)n) {
        snprintf(why, why_len, "frame %llu says it has %u bytes, got %zu", (unsigned long long)got, fr__le32(b + 12), n);
        return -1;
    }
    uint32_t want = fr__le32(b + 8), sum = framering_crc32c(b + 16, n - 16);
    if (want != sum) {
        snprintf(why, why_len, "frame %llu checksum %#08x, computed %#08x (torn or corrupt)", (unsigned long long)got,
                 want, sum);
        return -1;
    }
    if (got != f) {
        snprintf(why, why_len, "header says frame %llu, want %llu", (unsigned long long)got, (unsigned long long)f);
        return -1;
    }
    size_t i = 16;
    for (; i + 16 <= n; i += 16) {
        uint64_t v = (uint64_t)(uint8_t)((i >> 4) + f) * 0x0101010101010101ull;
        if (fr__le64(b + i) != v || fr__le64(b + i + 8) != v) break;
    }
    for (; i < n; i++) {
        if (b[i] != (uint8_t)((i >> 4) + f)) {
            snprintf(why, why_len, "frame %llu differs at byte %zu", (unsigned long long)f, i);
            return -1;
        }
    }
    return 0;
}

/* --- futex (PROTOCOL.md §9): shared, never FUTEX_PRIVATE_FLAG --- */

/* fr__futex_wait sleeps while *addr == v, at most ns. 0 on a wake-up, a
 * changed value, a signal or the timeout (the caller re-checks); else the
 * errno (EFAULT, EINVAL, ENOSYS: fatal, never "re-check"). */
static int fr__futex_wait(const uint32_t *addr, uint32_t v, int64_t ns) {
    if (ns < 1) ns = 1;
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    long rc = syscall(SYS_futex, addr, FUTEX_WAIT, v, &ts, NULL, 0);
    if (rc == 0 || errno == EAGAIN || errno == EINTR || errno == ETIMEDOUT) return 0;
    return errno;
}

static void fr__futex_wake(const uint32_t *addr) { syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0); }

/* --- OFD locks (PROTOCOL.md §10) --- */

static int fr__lock_write(int fd) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    for (;;) {
        if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return 0;
        if (errno != EINTR) return errno;
    }
}

/* fr__lock_held: 1 if another open file description holds a write lock on
 * fd's file, 0 if not, -errno if the probe failed. Takes no lock. */
static int fr__lock_held(int fd) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return -errno;
    return fl.l_type != F_UNLCK;
}

/* --- superblock validation (PROTOCOL.md §11), on a private copy --- */

/* fr__parse_sb checks the first 4096 bytes b of a file of size bytes, in the
 * order of §11, and fills g. */
static int fr__parse_sb(framering_error *e, const char *name, const uint8_t *b, uint64_t size,
                        framering_geometry *g) {
    if (memcmp(b, fr__magic, 8) != 0)
        return fr__fail(e, FRAMERING_ERR_INCOMPATIBLE, 0,
                        "ring \"%s\": incompatible ring segment: magic is %02x %02x %02x %02x %02x %02x %02x %02x, "
                        "want \"FRMRING\\0\": this file is not a framering ring; remove it and restart the producer",
                        name, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
    uint32_t v = fr__le32(b + FR__SB_VERSION);
    if (v != FRAMERING_LAYOUT_VERSION)
        return fr__fail(e, FRAMERING_ERR_INCOMPATIBLE, 0,
                        "ring \"%s\": incompatible ring segment: version is %u, want %u; use a reader of that "
                        "version, or restart the producer with this framering version",
                        name, v, FRAMERING_LAYOUT_VERSION);
    uint32_t sum = fr__le32(b + FR__SB_CHECKSUM), want = framering_crc32c(b, FR__CHECKSUM_LEN);
    if (sum != want)
        return fr__fail(e, FRAMERING_ERR_CORRUPT, 0,
                        "ring \"%s\": corrupt ring segment: superblock checksum %#08x, computed %#08x; remove the "
                        "file and restart the producer",
                        name, sum, want);
    uint32_t flags = fr__le32(b + FR__SB_FLAGS);
    if (flags != 0)
        return fr__fail(e, FRAMERING_ERR_INCOMPATIBLE, 0,
                        "ring \"%s\": incompatible ring segment: flags are %#x, want 0 (v2 defines no flags); a "
                        "newer writer made it: use a matching reader",
                        name, flags);
    uint32_t ss = fr__le32(b + FR__SB_SUPERSIZE);
    if (ss != FR__SB_SIZE)
        return fr__fail(e, FRAMERING_ERR_INCOMPATIBLE, 0,
                        "ring \"%s\": incompatible ring segment: superblock size is %u, want 4096; this is not a "
                        "framering v2 ring: remove it and restart the producer",
                        name, ss);
    uint64_t pay = fr__le64(b + FR__SB_PAYCAP);
    uint32_t slots = fr__le32(b + FR__SB_SLOTS), meta = fr__le32(b + FR__SB_METACAP);
    if (framering_geometry_make(slots, pay, meta, g) != FRAMERING_OK)
        return fr__fail(e, FRAMERING_ERR_CORRUPT, 0,
                        "ring \"%s\": corrupt ring segment: geometry %u slots x %llu bytes (+%u metadata) is out of "
                        "range; remove the file and restart the producer",
                        name, slots, (unsigned long long)pay, meta);
    struct {
        const char *what;
        uint64_t got, want;
    } derived[3] = {{"slot stride", fr__le64(b + FR__SB_STRIDE), g->slot_stride},
                    {"payload offset", fr__le64(b + FR__SB_PAYOFF), g->payload_offset},
                    {"file size", fr__le64(b + FR__SB_FILESIZE), g->file_size}};
    for (int i = 0; i < 3; i++)
        if (derived[i].got != derived[i].want)
            return fr__fail(e, FRAMERING_ERR_CORRUPT, 0,
                            "ring \"%s\": corrupt ring segment: %s is %llu, the geometry gives %llu; remove the file "
                            "and restart the producer",
                            name, derived[i].what, (unsigned long long)derived[i].got,
                            (unsigned long long)derived[i].want);
    if (size < g->file_size)
        return fr__fail(e, FRAMERING_ERR_TRUNCATED, 0,
                        "ring \"%s\": ring segment truncated: the file is %llu bytes, its superblock says %llu; is a "
                        "producer still creating it? otherwise remove it",
                        name, (unsigned long long)size, (unsigned long long)g->file_size);
    return FRAMERING_OK;
}

/* fr__header_ok validates a slot header copy against the geometry (§5,
 * §11); on failure it writes why. */
static int fr__header_ok(const fr__hdr *h, const framering_geometry *g, char *why, size_t n) {
    if (h->payload_len > g->payload_cap) {
        snprintf(why, n, "payload length %llu exceeds the slot capacity %llu", (unsigned long long)h->payload_len,
                 (unsigned long long)g->payload_cap);
        return 0;
    }
    if (h->format < 1 || h->format > FRAMERING_RAW) {
        snprintf(why, n, "unknown pixel format %u", h->format);
        return 0;
    }
    if (h->meta_len > g->meta_cap) {
        snprintf(why, n, "metadata length %u exceeds the slot's %u", h->meta_len, g->meta_cap);
        return 0;
    }
    if (h->format == FRAMERING_RAW) {
        if (h->payload_len < 1) {
            snprintf(why, n, "raw frame of 0 bytes");
            return 0;
        }
        return 1;
    }
    if (h->width < 1 || h->width > (1u << 20) || h->height < 1 || h->height > (1u << 20)) {
        snprintf(why, n, "%ux%u is outside [1, 1048576]", h->width, h->height);
        return 0;
    }
    if (h->channels != fr__format_channels[h->format]) {
        snprintf(why, n, "%s has %u channels, the header says %u", fr__format_names[h->format],
                 fr__format_channels[h->format], h->channels);
        return 0;
    }
    uint64_t row = (uint64_t)h->width * h->channels * framering_format_bytes_per_sample(h->format);
    if (h->stride < row || h->stride > 0x7FFFFFFFu) {
        snprintf(why, n, "stride %u is smaller than a row of %llu bytes", h->stride, (unsigned long long)row);
        return 0;
    }
    if ((uint64_t)h->stride * h->height != h->payload_len) {
        snprintf(why, n, "%ux%ux%u %s stride %u does not give payload length %llu", h->width, h->height,
                 h->channels, fr__format_names[h->format], h->stride, (unsigned long long)h->payload_len);
        return 0;
    }
    return 1;
}

/* fr__normalize checks a frame a writer is about to publish and fills in
 * its defaults; it returns the payload length in *len. */
static int fr__normalize(framering_error *e, const char *name, const framering_frame_info *in,
                         const framering_geometry *g, framering_frame_info *out, uint64_t *len) {
    *out = *in;
    if (in->format < 1 || in->format > FRAMERING_RAW)
        return fr__fail(e, FRAMERING_ERR_INVALID, 0,
                        "ring \"%s\": invalid frame: unknown pixel format %u; use one of FRAMERING_GRAY8 ... "
                        "FRAMERING_RAW",
                        name, in->format);
    if (in->meta_len > g->meta_cap)
        return fr__fail(e, FRAMERING_ERR_TOO_LARGE, 0,
                        "ring \"%s\": %u bytes of metadata, the slots hold %u; open the ring with more meta_bytes",
                        name, in->meta_len, g->meta_cap);
    if (in->format == FRAMERING_RAW) {
        if (in->len < 1)
            return fr__fail(e, FRAMERING_ERR_INVALID, 0, "ring \"%s\": invalid frame: raw frame of 0 bytes; give a "
                                                         "positive len", name);
        if (in->len > g->payload_cap)
            return fr__fail(e, FRAMERING_ERR_TOO_LARGE, 0,
                            "ring \"%s\": raw frame of %llu bytes, the slots hold %llu; open the ring with a larger "
                            "max_frame_bytes",
                            name, (unsigned long long)in->len, (unsigned long long)g->payload_cap);
        *len = in->len;
        return FRAMERING_OK;
    }
    if (in->width < 1 || in->height < 1 || in->width > (1u << 20) || in->height > (1u << 20))
        return fr__fail(e, FRAMERING_ERR_INVALID, 0,
                        "ring \"%s\": invalid frame: %ux%u; width and height must be in [1, 1048576]", name,
                        in->width, in->height);
    uint32_t want = fr__format_channels[in->format];
    if (out->channels == 0) out->channels = want;
    if (out->channels != want)
        return fr__fail(e, FRAMERING_ERR_INVALID, 0, "ring \"%s\": invalid frame: %s has %u channels, not %u", name,
                        fr__format_names[in->format], want, in->channels);
    uint64_t row = (uint64_t)in->width * want * framering_format_bytes_per_sample(in->format);
    if (out->stride == 0) {
        if (row > 0x7FFFFFFFu)
            return fr__fail(e, FRAMERING_ERR_INVALID, 0, "ring \"%s\": invalid frame: a row of %llu bytes is too "
                                                         "long", name, (unsigned long long)row);
        out->stride = (uint32_t)row;
    }
    if (out->stride < row || out->stride > 0x7FFFFFFFu)
        return fr__fail(e, FRAMERING_ERR_INVALID, 0,
                        "ring \"%s\": invalid frame: stride %u is smaller than a row of %llu bytes (%u x %u "
                        "channels)",
                        name, out->stride, (unsigned long long)row, in->width, want);
    uint64_t n = (uint64_t)out->stride * in->height;
    if (n > g->payload_cap)
        return fr__fail(e, FRAMERING_ERR_TOO_LARGE, 0,
                        "ring \"%s\": %ux%ux%u frame is %llu bytes, the slots hold %llu; open the ring with a "
                        "larger max_frame_bytes",
                        name, in->width, in->height, want, (unsigned long long)n, (unsigned long long)g->payload_cap);
    out->len = n;
    *len = n;
    return FRAMERING_OK;
}

static int fr__build_path(framering_error *e, char *out, size_t cap, const char *dir, const char *name) {
    if (framering_check_name(name) != FRAMERING_OK)
        return fr__fail(e, FRAMERING_ERR_INVALID, 0,
                        "invalid ring name \"%.40s%s\": use 1 to 200 of A-Z a-z 0-9 . _ - (not \".\" or \"..\")",
                        name ? name : "(null)", name && strlen(name) > 40 ? "..." : "");
    if (dir == NULL || dir[0] == 0) dir = FRAMERING_DEFAULT_DIR;
    int n = snprintf(out, cap, "%s/framering.%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return fr__fail(e, FRAMERING_ERR_INVALID, 0, "ring \"%s\": directory path is too long", name);
    return FRAMERING_OK;
}

/* ======================================================================== */
/*                                  reader                                  */
/* ======================================================================== */

typedef struct fr__seg {
    int fd;
    uint8_t *base;
    uint64_t dev, ino;
    framering_geometry geo;
} fr__seg;

/* fr__open_seg opens, checks and maps path read-only (§2, §8 Open). */
static int fr__open_seg(framering_error *e, const char *name, const char *path, const framering_reader_options *o,
                        fr__seg *s) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    /* O_NONBLOCK: a FIFO planted under the name must not block open. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int er = errno;
        switch (er) {
        case ENOENT:
            return fr__fail(e, FRAMERING_ERR_NOT_FOUND, er,
                            "ring \"%s\" does not exist (no %s); start its producer first, or wait for it", name, path);
        case ELOOP:
            return fr__fail(e, FRAMERING_ERR_UNSAFE, er,
                            "ring \"%s\": unsafe shared-memory file: %s is a symbolic link; refusing to read it: remove "
                            "it and restart the producer",
                            name, path);
        case EACCES:
        case EPERM:
            return fr__fail(e, FRAMERING_ERR_PERMISSION, er,
                            "ring \"%s\": open %s: %s; ask the producer to open it with a group-readable mode (0640) "
                            "and join its group",
                            name, path, strerror(er));
        case ENXIO:
        case EISDIR:
            return fr__fail(e, FRAMERING_ERR_UNSAFE, er,
                            "ring \"%s\": unsafe shared-memory file: %s is not a regular file; remove it and restart "
                            "the producer",
                            name, path);
        default:
            return fr__fail(e, FRAMERING_ERR_SYSTEM, er, "ring \"%s\": open %s: %s", name, path, strerror(er));
        }
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int er = errno;
        close(fd);
        return fr__fail(e, FRAMERING_ERR_SYSTEM, er, "ring \"%s\": fstat %s: %s", name, path, strerror(er));
    }
    const char *unsafe = NULL;
    char why[160];
    if (!S_ISREG(st.st_mode)) {
        unsafe = "is not a regular file";
    } else if (st.st_uid != geteuid() && !o->allow_other_owner) {
        snprintf(why, sizeof why, "belongs to uid %u, not to you (uid %u)", (unsigned)st.st_uid, (unsigned)geteuid());
        unsafe = why;
    } else if (st.st_mode & 0002) {
        snprintf(why, sizeof why, "is world-writable (mode %04o)", (unsigned)(st.st_mode & 07777));
        unsafe = why;
    } else if ((st.st_mode & 0020) && !o->allow_group_writable) {
        snprintf(why, sizeof why, "is group-writable (mode %04o)", (unsigned)(st.st_mode & 07777));
        unsafe = why;
    }
    if (unsafe) {
        close(fd);
        return fr__fail(e, FRAMERING_ERR_UNSAFE, 0,
                        "ring \"%s\": unsafe shared-memory file: %s %s; refusing to read it: remove it and restart "
                        "the producer, or if you trust it set allow_other_owner / allow_group_writable",
                        name, path, unsafe);
    }
    if (st.st_size < (off_t)FR__SB_SIZE || (uint64_t)st.st_size > FRAMERING_MAX_FILE_SIZE) {
        close(fd);
        return fr__fail(e, FRAMERING_ERR_TRUNCATED, 0,
                        "ring \"%s\": ring segment truncated: %s is %lld bytes; is a producer still creating it? "
                        "otherwise remove it",
                        name, path, (long long)st.st_size);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    uint8_t sb[FR__SB_SIZE];
    ssize_t got = pread(fd, sb, sizeof sb, 0);
    if (got != (ssize_t)sizeof sb) {
        int er = got < 0 ? errno : 0;
        close(fd);
        return fr__fail(e, FRAMERING_ERR_TRUNCATED, er,
                        "ring \"%s\": ring segment truncated: cannot read the superblock of %s (%s); is a producer "
                        "still creating it? otherwise remove it",
                        name, path, got < 0 ? strerror(er) : "short read");
    }
    int rc = fr__parse_sb(e, name, sb, (uint64_t)st.st_size, &s->geo);
    if (rc != FRAMERING_OK) {
        close(fd);
        return rc;
    }
    void *m = mmap(NULL, (size_t)s->geo.file_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        int er = errno;
        close(fd);
        return fr__fail(e, FRAMERING_ERR_SYSTEM, er, "ring \"%s\": mmap %llu bytes of %s: %s", name,
                        (unsigned long long)s->geo.file_size, path, strerror(er));
    }
    s->fd = fd;
    s->base = FR__CAST(uint8_t *, m);
    s->dev = (uint64_t)st.st_dev;
    s->ino = (uint64_t)st.st_ino;
    return FRAMERING_OK;
}

static void fr__close_seg(fr__seg *s) {
    if (s->base) munmap(s->base, (size_t)s->geo.file_size);
    if (s->fd >= 0) close(s->fd);
    s->base = NULL;
    s->fd = -1;
}

static void fr__reader_set(framering_reader *r, const fr__seg *s) {
    __atomic_store_n(&r->base, s->base, __ATOMIC_RELEASE);
    r->fd = s->fd;
    r->dev = s->dev;
    r->ino = s->ino;
    r->geo = s->geo;
}

static int fr__reader_meta(framering_reader *r) {
    size_t n = r->geo.meta_cap ? r->geo.meta_cap : 1;
    uint8_t *p = FR__CAST(uint8_t *, realloc(r->meta_buf, n));
    if (p == NULL)
        return fr__fail(&r->err, FRAMERING_ERR_SYSTEM, ENOMEM, "ring \"%s\": out of memory for %zu bytes of metadata",
                        r->name, n);
    r->meta_buf = p;
    return FRAMERING_OK;
}

#define FR__ST_ADD(r, field, v) FR__ADD_RELAXED(&(r)->st.field, (uint64_t)(v))
#define FR__ST_SET(r, field, v) FR__STORE(&(r)->st.field, (v))

static void fr__reader_start(framering_reader *r, uint64_t head) {
    uint64_t n = r->geo.slots;
    switch (r->opts.start) {
    case FRAMERING_START_NEXT:
        r->next = head + 1;
        break;
    case FRAMERING_START_OLDEST:
        r->next = head > n ? head - n + 1 : 1;
        break;
    default:
        r->next = head > 1 ? head : 1;
    }
    r->started = 1;
    FR__ST_SET(r, window_start, r->next);
    FR__ST_SET(r, last, r->next - 1);
}

int framering_reader_open(framering_reader *r, const char *name, const framering_reader_options *opts) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    if (opts) r->opts = *opts;
    r->opts.dir = NULL; /* not retained: the path is built now */
    if (r->opts.wait_slice_ns <= 0) r->opts.wait_slice_ns = 100000000;
    if (r->opts.hung_after_ns <= 0) r->opts.hung_after_ns = 1000000000;
    if (r->opts.spin_ns < 0) r->opts.spin_ns = 0;
    int rc = fr__build_path(&r->err, r->path, sizeof r->path, opts ? opts->dir : NULL, name);
    if (rc != FRAMERING_OK) return rc;
    if (r->opts.mode != FRAMERING_ORDERED && r->opts.mode != FRAMERING_LATEST)
        return fr__fail(&r->err, FRAMERING_ERR_INVALID, 0, "ring \"%s\": mode %d: use FRAMERING_ORDERED or "
                                                           "FRAMERING_LATEST", name, r->opts.mode);
    if (r->opts.start < FRAMERING_START_NEWEST || r->opts.start > FRAMERING_START_OLDEST)
        return fr__fail(&r->err, FRAMERING_ERR_INVALID, 0, "ring \"%s\": start %d: use FRAMERING_START_NEWEST, _NEXT "
                                                           "or _OLDEST", name, r->opts.start);
    snprintf(r->name, sizeof r->name, "%s", name);
    fr__seg s;
    rc = fr__open_seg(&r->err, r->name, r->path, &r->opts, &s);
    if (rc != FRAMERING_OK) return rc;
    uint64_t head = FR__LOAD_ACQ(fr__u64(s.base, FR__SB_HEAD));
    if (head >= FR__HALF) {
        fr__close_seg(&s);
        return fr__fail(&r->err, FRAMERING_ERR_CORRUPT, 0,
                        "ring \"%s\": corrupt ring segment: head %llu is absurd; remove the file and restart the "
                        "producer",
                        r->name, (unsigned long long)head);
    }
    fr__reader_set(r, &s);
    if (fr__reader_meta(r) != FRAMERING_OK) {
        fr__close_seg(&s);
        return r->err.code;
    }
    int er = pthread_mutex_init(&r->mu, NULL);
    if (er != 0) {
        fr__close_seg(&s);
        free(r->meta_buf);
        r->meta_buf = NULL;
        return fr__fail(&r->err, FRAMERING_ERR_SYSTEM, er, "ring \"%s\": pthread_mutex_init: %s", r->name,
                        strerror(er));
    }
    fr__reader_start(r, head);
    r->st.writer_up = 1;
    r->is_open = 1;
    return fr__ok(&r->err);
}

int framering_reader_open_wait(framering_reader *r, const char *name, const framering_reader_options *opts,
                               int64_t timeout_ns) {
    int64_t deadline = timeout_ns < 0 ? INT64_MAX : framering_now_ns() + timeout_ns;
    for (;;) {
        int rc = framering_reader_open(r, name, opts);
        if (rc != FRAMERING_ERR_NOT_FOUND && rc != FRAMERING_ERR_TRUNCATED) return rc;
        int64_t left = deadline - framering_now_ns();
        if (left <= 0) {
            char prev[FRAMERING_MSG_MAX];
            snprintf(prev, sizeof prev, "%s", r->err.msg);
            return fr__fail(&r->err, FRAMERING_ERR_TIMEOUT, 0, "ring \"%s\" did not appear in time: %s",
                            r->name[0] ? r->name : name, prev);
        }
        struct timespec ts = {0, 20000000};
        if (left < 20000000) ts.tv_nsec = (long)left;
        nanosleep(&ts, NULL);
    }
}

/* fr__alive probes the writer (§10, D2): 1 alive (or starting), 0 gone or
 * hung (why says which). It leaves Generation, loaded before the lock
 * probe, in r->probe_gen and whether the writer is hung in r->probe_hung:
 * if the lock is free, any later takeover bumps Generation past
 * probe_gen. */
static int fr__alive(framering_reader *r, char *why, size_t n) {
    uint32_t pid = FR__LOAD(fr__u32(r->base, FR__SB_PID));
    uint64_t gen = FR__LOAD_ACQ(fr__u64(r->base, FR__SB_GEN));
    int64_t hb = FR__LOAD(fr__i64(r->base, FR__SB_HEARTBEAT));
    r->probe_gen = gen;
    r->probe_hung = 0;
    int held = fr__lock_held(r->fd);
    if (held < 0) {
        snprintf(why, n, "cannot probe the writer lock: %s", strerror(-held));
        return 0;
    }
    if (!held) {
        snprintf(why, n, "writer pid %u exited or closed the ring", pid);
        return 0;
    }
    if (gen == 0 || hb == 0) return 1; /* starting, or not stamped yet: the lock decides */
    int64_t age = framering_now_ns() - hb;
    if (age > r->opts.hung_after_ns) {
        snprintf(why, n, "writer pid %u is alive but its heartbeat is %lld ms old (hung or stopped)", pid,
                 (long long)(age / 1000000));
        r->probe_hung = 1;
        return 0;
    }
    return 1;
}

/* fr__gone reports the writer gone, as the last fr__alive found it. */
static int fr__gone(framering_reader *r, const char *why) {
    r->gone = 1;
    r->gone_gen = r->probe_gen;
    r->gone_hung = r->probe_hung;
    FR__ST_ADD(r, writer_gone, 1);
    FR__ST_SET(r, writer_up, 0);
    return fr__fail(&r->err, FRAMERING_ERR_WRITER_GONE, 0,
                    "ring \"%s\": ring writer is gone: %s; the next read waits for a writer to come back", r->name,
                    why);
}

static void fr__resume(framering_reader *r) {
    r->gone = 0;
    FR__ST_ADD(r, resumes, 1);
    FR__ST_SET(r, writer_up, 1);
}

/* fr__stopped: close or cancel (consumed) ends any wait. */
static int fr__stopped(framering_reader *r) {
    if (__atomic_load_n(&r->closed_flag, __ATOMIC_ACQUIRE))
        return fr__fail(&r->err, FRAMERING_ERR_CLOSED, 0, "ring \"%s\": the reader is closed", r->name);
    if (__atomic_exchange_n(&r->cancel_flag, 0, __ATOMIC_ACQ_REL))
        return fr__fail(&r->err, FRAMERING_ERR_CANCELED, 0, "ring \"%s\": read canceled", r->name);
    return FRAMERING_OK;
}

static int fr__expired(framering_reader *r, int64_t deadline, int64_t timeout_ns, const char *waiting_for) {
    if (deadline != INT64_MAX && framering_now_ns() >= deadline)
        return fr__fail(&r->err, FRAMERING_ERR_TIMEOUT, 0, "ring \"%s\": %s for %lld ms; is the producer running?",
                        r->name, waiting_for, (long long)(timeout_ns / 1000000));
    return FRAMERING_OK;
}

#ifdef FRAMERING_TEST_HOOKS
/* Tests only: called right before every futex wait of a read (the wait
 * for a frame, for a writer, for a slot mid-write), to count the wait
 * slices and act between them. */
static void (*fr__test_before_wait)(framering_reader *r);
#define FR__BEFORE_WAIT(r)                                                                                             \
    do {                                                                                                               \
        if (fr__test_before_wait) fr__test_before_wait(r);                                                             \
    } while (0)
#else
#define FR__BEFORE_WAIT(r) ((void)0)
#endif

/* fr__wait_slice sleeps on Notify for one slice, bounded by the deadline. */
static int fr__wait_slice(framering_reader *r, uint32_t v, int64_t slice, int64_t deadline) {
    if (deadline != INT64_MAX) {
        int64_t left = deadline - framering_now_ns();
        if (left < slice) slice = left;
    }
    if (slice < 1) return FRAMERING_OK;
    FR__BEFORE_WAIT(r);
    int er = fr__futex_wait(fr__u32(r->base, FR__SB_NOTIFY), v, slice);
    if (er != 0)
        return fr__fail(&r->err, FRAMERING_ERR_SYSTEM, er,
                        "ring \"%s\": FUTEX_WAIT on the notify word failed: %s (a reader must not treat this as "
                        "\"re-check\"; is the futex syscall available?)",
                        r->name, strerror(er));
    return FRAMERING_OK;
}

/* fr__reattach opens the file the path names now (a writer replaced the
 * ring) in place of the mapped one; next is kept (§10). */
static int fr__reattach(framering_reader *r) {
    fr__seg s, old;
    int rc = fr__open_seg(&r->err, r->name, r->path, &r->opts, &s);
    if (rc != FRAMERING_OK) return rc;
    old.fd = r->fd;
    old.base = r->base;
    old.geo = r->geo;
    fr__reader_set(r, &s);
    fr__close_seg(&old);
    return fr__reader_meta(r);
}

/* fr__writer_back: after writer-gone, has the mapped file had a writer
 * again (§10)? Generation moved (a writer completed its takeover, D3, and
 * its frames are in the file, even if it has already gone again), or the
 * writer was hung and is alive with a fresh heartbeat again. The lock held
 * with the same Generation after a writer that was gone (the lock was
 * free) is a new writer still preparing the file (the prefault before its
 * takeover) or replacing it: not back yet. */
static int fr__writer_back(framering_reader *r) {
    char why[160];
    int alive = fr__alive(r, why, sizeof why);
    if (r->probe_gen != 0 && r->probe_gen != r->gone_gen) return 1;
    return alive && r->gone_hung;
}

/* fr__await_writer waits, after writer-gone, until a writer is back on
 * this file (fr__writer_back) or the path names a new file (then
 * re-maps). */
static int fr__await_writer(framering_reader *r, int64_t deadline, int64_t timeout_ns) {
    char last[FRAMERING_MSG_MAX] = "";
    for (;;) {
        int rc = fr__stopped(r);
        if (rc != FRAMERING_OK) return rc;
        /* Notify before the checks: a takeover after them wakes the wait. */
        uint32_t v = FR__LOAD_ACQ(fr__u32(r->base, FR__SB_NOTIFY));
        struct stat st;
        if (lstat(r->path, &st) == 0 && ((uint64_t)st.st_ino != r->ino || (uint64_t)st.st_dev != r->dev)) {
            rc = fr__reattach(r);
            if (rc == FRAMERING_OK) {
                fr__resume(r);
                return FRAMERING_OK;
            }
            if (rc == FRAMERING_ERR_SYSTEM && r->err.sys_errno == ENOMEM) return rc;
            snprintf(last, sizeof last, "%s", r->err.msg);
        } else if (fr__writer_back(r)) {
            fr__resume(r);
            return FRAMERING_OK;
        }
        rc = fr__expired(r, deadline, timeout_ns, "no writer came back");
        if (rc != FRAMERING_OK) {
            if (last[0]) {
                size_t n = strlen(r->err.msg);
                snprintf(r->err.msg + n, sizeof r->err.msg - n, " (last re-open attempt: %s)", last);
            }
            return rc;
        }
        int64_t slice = r->opts.wait_slice_ns < 50000000 ? r->opts.wait_slice_ns : 50000000;
        rc = fr__wait_slice(r, v, slice, deadline);
        if (rc != FRAMERING_OK) return rc;
    }
}

/* fr__peek_frame_no reads the frame number in frame n's slot under its
 * seqlock. 1 if stable (*f set), 0 if the slot kept changing. */
static int fr__peek_frame_no(framering_reader *r, uint64_t n, uint64_t *f) {
    uint8_t *slot = r->base + FR__SB_SIZE + (n & (r->geo.slots - 1)) * r->geo.slot_stride;
    uint64_t *seq = fr__u64(slot, 0);
    for (int i = 0; i < 100; i++) {
        uint64_t s1 = FR__LOAD_ACQ(seq);
        uint64_t v = FR__LOAD(fr__u64(slot, 8));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if ((s1 & 1) == 0 && FR__LOAD(seq) == s1) {
            *f = v;
            return 1;
        }
    }
    return 0;
}

/* fr__head_implausible: D4. A head whose own slot holds an older frame is
 * not backed by the slots (the writer is broken or the file was altered). */
static int fr__head_implausible(framering_reader *r, uint64_t head) {
    uint64_t f = 0;
    return fr__peek_frame_no(r, head, &f) && f != 0 && f < head;
}

static int fr__absurd_head(framering_reader *r, uint64_t head) {
    return fr__fail(&r->err, FRAMERING_ERR_CORRUPT, 0,
                    "ring \"%s\": corrupt ring segment: head %llu is not backed by the slots (absurd head); the "
                    "writer is broken or the file was altered: restart the producer",
                    r->name, (unsigned long long)head);
}

/* fr__candidate picks the frame to read given head (§8), counting what it
 * passes over. 1: *n set; 0: nothing new; < 0: -code (error set). */
static int fr__candidate(framering_reader *r, uint64_t head, uint64_t *n) {
    uint64_t slots = r->geo.slots;
    if (head + 1 < r->next) {
        /* The numbering went back: a new ring from scratch. Close the
         * window, open a new one at the oldest frame. */
        uint64_t ws = FR__LOAD(&r->st.window_start), last = FR__LOAD(&r->st.last);
        FR__ADD_RELAXED(&r->closed_windows, last + 1 - ws);
        FR__ST_ADD(r, resets, 1);
        r->next = head > slots ? head - slots + 1 : 1;
        FR__ST_SET(r, window_start, r->next);
        FR__ST_SET(r, last, r->next - 1);
    }
    if (r->next > head) return 0;
    if (r->opts.mode == FRAMERING_LATEST) {
        if (head > r->next) {
            if (head - r->next >= slots && fr__head_implausible(r, head)) return -fr__absurd_head(r, head);
            FR__ST_ADD(r, skipped, head - r->next);
            r->next = head;
        }
    } else if (head - r->next >= slots) {
        if (fr__head_implausible(r, head)) return -fr__absurd_head(r, head);
        /* Lapped: resume half a ring behind the head, not at the oldest
         * slot, which the writer overwrites next. */
        uint64_t resume = head - slots / 2 + 1;
        FR__ST_ADD(r, lapped, resume - r->next);
        r->next = resume;
    }
    *n = r->next;
    return 1;
}

/* fr__pick blocks until there is a frame to read and returns its number. */
static int fr__pick(framering_reader *r, int64_t deadline, int64_t timeout_ns, uint64_t *n) {
    int64_t spin_until = 0, next_probe = 0;
    for (;;) {
        int rc = fr__stopped(r);
        if (rc != FRAMERING_OK) return rc;
        if (r->gone) {
            rc = fr__await_writer(r, deadline, timeout_ns);
            if (rc != FRAMERING_OK) return rc;
        }
        uint64_t *hp = fr__u64(r->base, FR__SB_HEAD);
        uint64_t head = FR__LOAD_ACQ(hp);
        if (head >= FR__HALF)
            return fr__fail(&r->err, FRAMERING_ERR_CORRUPT, 0,
                            "ring \"%s\": corrupt ring segment: head %llu is absurd (>= 2^63); restart the producer",
                            r->name, (unsigned long long)head);
        int c = fr__candidate(r, head, n);
        if (c < 0) return -c;
        if (c > 0) {
            r->head_seen = head;
            return FRAMERING_OK;
        }
        rc = fr__expired(r, deadline, timeout_ns, "no frame");
        if (rc != FRAMERING_OK) return rc;
        if (r->opts.spin_ns > 0) {
            int64_t now = framering_now_ns();
            if (spin_until == 0) {
                spin_until = now + r->opts.spin_ns;
                next_probe = now + r->opts.wait_slice_ns;
            }
            if (now < spin_until) {
                for (int i = 0; i < 128 && FR__LOAD(hp) == head; i++) fr__cpu_relax();
                if (now >= next_probe) {
                    char why[160];
                    next_probe = now + r->opts.wait_slice_ns;
                    if (FR__LOAD_ACQ(hp) == head && !fr__alive(r, why, sizeof why)) return fr__gone(r, why);
                }
                continue;
            }
        }
        /* Sleep (§9): load Notify FIRST, then re-check Head. */
        uint32_t v = FR__LOAD_ACQ(fr__u32(r->base, FR__SB_NOTIFY));
        if (FR__LOAD_ACQ(hp) != head) continue;
        rc = fr__wait_slice(r, v, r->opts.wait_slice_ns, deadline);
        if (rc != FRAMERING_OK) return rc;
        if (FR__LOAD_ACQ(hp) != head) continue;
        if (__atomic_load_n(&r->closed_flag, __ATOMIC_ACQUIRE) || __atomic_load_n(&r->cancel_flag, __ATOMIC_ACQUIRE))
            continue;
        if (deadline != INT64_MAX && framering_now_ns() >= deadline) continue;
        char why[160];
        if (!fr__alive(r, why, sizeof why)) return fr__gone(r, why);
    }
}

enum { FR__GOT, FR__LOST, FR__TORN, FR__ODD, FR__CORRUPT, FR__SMALL, FR__NOMEM };

/* fr__attempt reads frame n under the seqlock (§6). For a copy it copies
 * payload and metadata out and validates; for a view it checks the header
 * and returns the begin value in *s1. */
static int fr__attempt(framering_reader *r, uint64_t n, uint8_t *dst, size_t cap, int copy_out, framering_frame *f,
                       uint64_t *s1out, char *why, size_t why_len) {
    const framering_geometry *g = &r->geo;
    uint8_t *slot = r->base + FR__SB_SIZE + (n & (g->slots - 1)) * g->slot_stride;
    uint64_t *seq = fr__u64(slot, 0);
    uint64_t s1 = FR__LOAD_ACQ(seq);
    if (s1 & 1) {
        /* The writer is rewriting the slot: if with frame n+N, n is gone. */
        if (FR__LOAD_ACQ(fr__u64(r->base, FR__SB_HEAD)) + 1 >= n + g->slots) return FR__LOST;
        return FR__ODD;
    }
    fr__hdr h;
    memcpy(&h, slot, sizeof h); /* racy copy; every decision uses the copy and is validated by seq */
    if (h.frame_no != n) {
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (FR__LOAD(seq) != s1) return FR__TORN;
        if (h.frame_no != 0 && h.frame_no < n) {
            snprintf(why, why_len,
                     "the slot of frame %llu holds older frame %llu: the head is ahead of the slots (absurd head)",
                     (unsigned long long)n, (unsigned long long)h.frame_no);
            return FR__CORRUPT;
        }
        return FR__LOST;
    }
    if (!fr__header_ok(&h, g, why, why_len)) {
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (FR__LOAD(seq) != s1) return FR__TORN;
        return FR__CORRUPT;
    }
    const uint8_t *payload = slot + g->payload_offset;
    const uint8_t *meta = slot + FR__HDR_SIZE;
    if (copy_out) {
        if (dst == NULL) {
            if (r->pay_buf_cap < h.payload_len) {
                uint8_t *p = FR__CAST(uint8_t *, realloc(r->pay_buf, (size_t)h.payload_len));
                if (p == NULL) {
                    snprintf(why, why_len, "out of memory for a frame of %llu bytes; pass your own buffer",
                             (unsigned long long)h.payload_len);
                    return FR__NOMEM;
                }
                r->pay_buf = p;
                r->pay_buf_cap = h.payload_len;
            }
            dst = r->pay_buf;
        } else if (cap < h.payload_len) {
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (FR__LOAD(seq) != s1) return FR__TORN;
            snprintf(why, why_len, "buffer of %zu bytes, frame %llu has %llu; size buffers by the geometry's "
                                   "payload_cap", cap, (unsigned long long)n, (unsigned long long)h.payload_len);
            return FR__SMALL;
        }
        memcpy(dst, payload, (size_t)h.payload_len);
        if (h.meta_len) memcpy(r->meta_buf, meta, h.meta_len);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (FR__LOAD(seq) != s1) return FR__TORN;
        f->pixels = dst;
        f->meta = r->meta_buf;
    } else {
        /* Hand out no header already known to be torn; release validates
         * the whole view. */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (FR__LOAD(seq) != s1) return FR__TORN;
        f->pixels = payload;
        f->meta = meta;
    }
    f->number = n;
    f->generation = h.generation;
    f->width = h.width;
    f->height = h.height;
    f->channels = h.channels;
    f->format = h.format;
    f->stride = h.stride;
    f->meta_len = h.meta_len;
    f->len = h.payload_len;
    f->publish_ns = h.publish_ns;
    f->capture_ns = h.capture_ns;
    f->wall_ns = h.wall_ns;
    *s1out = s1;
    return FR__GOT;
}

static void fr__deliver(framering_reader *r, uint64_t n) {
    r->next = n + 1;
    FR__ST_ADD(r, delivered, 1);
    FR__ST_SET(r, last, n);
    FR__ST_SET(r, lag, r->head_seen - (r->head_seen < n ? r->head_seen : n));
}

static void fr__drop(framering_reader *r, uint64_t n, int corrupt) {
    r->next = n + 1;
    if (corrupt)
        FR__ST_ADD(r, corrupt, 1);
    else
        FR__ST_ADD(r, lapped, 1);
    FR__ST_SET(r, last, n);
}

static int fr__acquire(framering_reader *r, uint8_t *dst, size_t cap, int copy_out, framering_frame *f,
                       int64_t timeout_ns) {
    if (r == NULL) return FRAMERING_ERR_INVALID;
    if (!r->is_open || __atomic_load_n(&r->closed_flag, __ATOMIC_ACQUIRE))
        return fr__fail(&r->err, FRAMERING_ERR_CLOSED, 0, "ring \"%s\": the reader is closed", r->name);
    if (f == NULL) return fr__fail(&r->err, FRAMERING_ERR_INVALID, 0, "ring \"%s\": frame pointer is NULL", r->name);
    pthread_mutex_lock(&r->mu);
    if (__atomic_load_n(&r->closed_flag, __ATOMIC_ACQUIRE)) { /* closed between the check above and the lock */
        pthread_mutex_unlock(&r->mu);
        return fr__fail(&r->err, FRAMERING_ERR_CLOSED, 0, "ring \"%s\": the reader is closed", r->name);
    }
    if (r->view_out) {
        pthread_mutex_unlock(&r->mu);
        return fr__fail(&r->err, FRAMERING_ERR_OUTSTANDING, 0,
                        "ring \"%s\": previous view not released; call framering_reader_release first", r->name);
    }
    int64_t deadline = INT64_MAX;
    if (timeout_ns >= 0) {
        int64_t now = framering_now_ns();
        deadline = timeout_ns > INT64_MAX - now ? INT64_MAX - 1 : now + timeout_ns;
    }
    int rc;
    for (;;) {
        uint64_t n = 0, s1 = 0;
        rc = fr__pick(r, deadline, timeout_ns, &n);
        if (rc != FRAMERING_OK) break;
        char why[256];
        int oc = fr__attempt(r, n, dst, cap, copy_out, f, &s1, why, sizeof why);
        if (oc == FR__GOT) {
            if (copy_out) {
                fr__deliver(r, n);
            } else {
                r->view_out = 1;
                r->view_number = n;
                r->view_seq = s1;
                r->view_at = framering_now_ns();
            }
            r->torn_run = 0;
            rc = fr__ok(&r->err);
            break;
        }
        if (oc == FR__LOST) {
            fr__drop(r, n, 0);
            continue;
        }
        if (oc == FR__CORRUPT) {
            fr__drop(r, n, 1);
            rc = fr__fail(&r->err, FRAMERING_ERR_CORRUPT, 0,
                          "ring \"%s\": corrupt ring segment: frame %llu header: %s; frame %llu skipped; if this "
                          "repeats the writer is broken, restart it",
                          r->name, (unsigned long long)n, why, (unsigned long long)n);
            break;
        }
        if (oc == FR__NOMEM) {
            rc = fr__fail(&r->err, FRAMERING_ERR_SYSTEM, ENOMEM, "ring \"%s\": read frame %llu: %s", r->name,
                          (unsigned long long)n, why);
            break;
        }
        if (oc == FR__SMALL) {
            rc = fr__fail(&r->err, FRAMERING_ERR_TOO_LARGE, 0, "ring \"%s\": read frame %llu: %s", r->name,
                          (unsigned long long)n, why);
            break;
        }
        /* Torn or odd: retry. A run of them on one frame is not normal
         * (a lapping writer makes the frame LOST, not torn): probe the
         * writer and stop spinning (D5). */
        FR__ST_ADD(r, retries, 1);
        if (r->torn_n != n) {
            r->torn_n = n;
            r->torn_run = 0;
        }
        r->torn_run++;
        if (r->torn_run < FR__TORN_PROBE) {
            if ((r->torn_run & 15) == 0) sched_yield();
            continue;
        }
        if (!fr__alive(r, why, sizeof why)) {
            r->torn_run = 0;
            fr__drop(r, n, 1);
            rc = fr__fail(&r->err, FRAMERING_ERR_CORRUPT, 0,
                          "ring \"%s\": frame %llu: its slot stays mid-write (seq %s) and %s; frame %llu skipped",
                          r->name, (unsigned long long)n, oc == FR__ODD ? "odd" : "changing", why,
                          (unsigned long long)n);
            break;
        }
        uint32_t v = FR__LOAD_ACQ(fr__u32(r->base, FR__SB_NOTIFY));
        rc = fr__stopped(r);
        if (rc == FRAMERING_OK) rc = fr__expired(r, deadline, timeout_ns, "frame stayed mid-write (seq odd)");
        if (rc == FRAMERING_OK) rc = fr__wait_slice(r, v, r->opts.wait_slice_ns, deadline);
        if (rc != FRAMERING_OK) break;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int framering_reader_read(framering_reader *r, void *dst, size_t cap, framering_frame *f, int64_t timeout_ns) {
    return fr__acquire(r, FR__CAST(uint8_t *, dst), cap, 1, f, timeout_ns);
}

int framering_reader_acquire(framering_reader *r, framering_frame *f, int64_t timeout_ns) {
    return fr__acquire(r, NULL, 0, 0, f, timeout_ns);
}

int framering_reader_release(framering_reader *r) {
    if (r == NULL) return FRAMERING_ERR_INVALID;
    if (!r->is_open) return fr__fail(&r->err, FRAMERING_ERR_CLOSED, 0, "ring \"%s\": the reader is closed", r->name);
    pthread_mutex_lock(&r->mu);
    int rc;
    if (__atomic_load_n(&r->closed_flag, __ATOMIC_ACQUIRE)) {
        rc = fr__fail(&r->err, FRAMERING_ERR_CLOSED, 0, "ring \"%s\": the reader is closed", r->name);
    } else if (!r->view_out) {
        rc = fr__fail(&r->err, FRAMERING_ERR_INVALID, 0, "ring \"%s\": release: no view is out", r->name);
    } else {
        r->view_out = 0;
        uint64_t n = r->view_number;
        uint8_t *slot = r->base + FR__SB_SIZE + (n & (r->geo.slots - 1)) * r->geo.slot_stride;
        __atomic_thread_fence(__ATOMIC_ACQUIRE); /* the caller's loads of the view stay before this seq load */
        if (FR__LOAD(fr__u64(slot, 0)) == r->view_seq) {
            fr__deliver(r, n);
            rc = fr__ok(&r->err);
        } else {
            r->next = n + 1;
            FR__ST_ADD(r, overwritten, 1);
            FR__ST_SET(r, last, n);
            rc = fr__fail(&r->err, FRAMERING_ERR_OVERWRITTEN, 0,
                          "ring \"%s\": frame %llu: frame overwritten while in use; the reader was more than %u "
                          "frames behind, discard what was computed from it",
                          r->name, (unsigned long long)n, r->geo.slots);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void framering_reader_cancel(framering_reader *r) {
    __atomic_store_n(&r->cancel_flag, 1, __ATOMIC_RELEASE);
    uint8_t *base = __atomic_load_n(&r->base, __ATOMIC_ACQUIRE);
    if (base) fr__futex_wake(fr__u32(base, FR__SB_NOTIFY)); /* also wakes other sleepers on it: harmless */
}

int framering_reader_close(framering_reader *r) {
    if (r == NULL || !r->is_open) return FRAMERING_OK;
    if (__atomic_exchange_n(&r->closed_flag, 1, __ATOMIC_ACQ_REL)) return FRAMERING_OK;
    uint8_t *base = __atomic_load_n(&r->base, __ATOMIC_ACQUIRE);
    if (base) fr__futex_wake(fr__u32(base, FR__SB_NOTIFY));
    pthread_mutex_lock(&r->mu);
    fr__seg s;
    s.fd = r->fd;
    s.base = r->base;
    s.geo = r->geo;
    fr__close_seg(&s);
    __atomic_store_n(&r->base, (uint8_t *)NULL, __ATOMIC_RELEASE);
    r->fd = -1;
    free(r->meta_buf);
    free(r->pay_buf);
    r->meta_buf = r->pay_buf = NULL;
    r->is_open = 0;
    pthread_mutex_unlock(&r->mu);
    /* The mutex is not destroyed: a read that started on another thread
     * may still be about to lock it (it then sees closed_flag). A default
     * pthread mutex holds no resources on Linux. */
    return FRAMERING_OK;
}

void framering_reader_stats_get(framering_reader *r, framering_reader_stats *st) {
    memset(st, 0, sizeof *st);
    st->delivered = FR__LOAD(&r->st.delivered);
    st->lapped = FR__LOAD(&r->st.lapped);
    st->skipped = FR__LOAD(&r->st.skipped);
    st->overwritten = FR__LOAD(&r->st.overwritten);
    st->corrupt = FR__LOAD(&r->st.corrupt);
    st->retries = FR__LOAD(&r->st.retries);
    st->writer_gone = FR__LOAD(&r->st.writer_gone);
    st->resumes = FR__LOAD(&r->st.resumes);
    st->resets = FR__LOAD(&r->st.resets);
    st->lag = FR__LOAD(&r->st.lag);
    st->window_start = FR__LOAD(&r->st.window_start);
    st->last = FR__LOAD(&r->st.last);
    st->window_frames = FR__LOAD(&r->closed_windows) + (st->last + 1 - st->window_start);
    st->writer_up = FR__LOAD(&r->st.writer_up);
}

framering_geometry framering_reader_geometry(const framering_reader *r) { return r->geo; }

const char *framering_reader_error(const framering_reader *r) { return r->err.msg; }

/* ======================================================================== */
/*                                  writer                                  */
/* ======================================================================== */

static void fr__random_hex(char out[17]) {
    uint64_t v = 0;
#ifdef FR__HAVE_GETRANDOM
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) v = 0;
#endif
    if (v == 0) {
        /* No entropy call: mix what differs between attempts and processes. */
        uint64_t x = (uint64_t)fr__clock(CLOCK_MONOTONIC) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)out;
        x ^= (uint64_t)fr__clock(CLOCK_REALTIME) * 0x9E3779B97F4A7C15ull;
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ull;
        v = x ^ (x >> 29);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)v);
}

/* fr__clean_stale_tmp removes temporary files of crashed creators in dir
 * (D1.4): .framering-tmp.* owned by us, unlocked, older than 10 s. */
static void fr__clean_stale_tmp(const char *dir) {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return;
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return;
    }
    int64_t now = fr__clock(CLOCK_REALTIME);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, ".framering-tmp.", 15) != 0) continue;
        int fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()) {
            int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
            if (now - mtime > (int64_t)10 * 1000000000 && fr__lock_held(fd) == 0) unlinkat(dfd, de->d_name, 0);
        }
        close(fd);
    }
    closedir(d);
}

static void fr__format_sb(uint8_t *b, const framering_geometry *g, int64_t created) {
    memset(b, 0, FR__SB_SIZE);
    memcpy(b, fr__magic, 8);
    fr__put32(b + FR__SB_VERSION, FRAMERING_LAYOUT_VERSION);
    fr__put32(b + FR__SB_SUPERSIZE, FR__SB_SIZE);
    fr__put32(b + FR__SB_SLOTS, g->slots);
    fr__put32(b + FR__SB_METACAP, g->meta_cap);
    fr__put64(b + FR__SB_STRIDE, g->slot_stride);
    fr__put64(b + FR__SB_PAYOFF, g->payload_offset);
    fr__put64(b + FR__SB_PAYCAP, g->payload_cap);
    fr__put64(b + FR__SB_FILESIZE, g->file_size);
    fr__put64(b + FR__SB_CREATED, (uint64_t)created);
    fr__put32(b + FR__SB_CHECKSUM, framering_crc32c(b, FR__CHECKSUM_LEN));
}

/* What a replacement carries over from the old superblock (D4). */
typedef struct fr__carry {
    int valid;
    uint64_t head, generation, frames, bytes;
} fr__carry;

/* fr__carry_from reads the live words of an old superblock copy whose
 * magic, version and checksum are right; absurd values are dropped. */
static void fr__carry_from(const uint8_t *b, fr__carry *c) {
    memset(c, 0, sizeof *c);
    if (memcmp(b, fr__magic, 8) != 0 || fr__le32(b + FR__SB_VERSION) != FRAMERING_LAYOUT_VERSION ||
        fr__le32(b + FR__SB_CHECKSUM) != framering_crc32c(b, FR__CHECKSUM_LEN))
        return;
    c->valid = 1;
    c->head = fr__le64(b + FR__SB_HEAD);
    c->generation = fr__le64(b + FR__SB_GEN);
    c->frames = fr__le64(b + FR__SB_FRAMES);
    c->bytes = fr__le64(b + FR__SB_BYTES);
    if (c->head >= FR__HALF) c->head = 0; /* absurd: the numbering cannot continue from it */
    if (c->generation >= FR__HALF) c->generation = 0;
}

static int fr__cmp_desc(const void *a, const void *b) {
    uint64_t x = *FR__CAST(const uint64_t *, a), y = *FR__CAST(const uint64_t *, b);
    return x < y ? 1 : x > y ? -1 : 0;
}

/* fr__takeover makes the mapped segment ours (D3): repair odd slots,
 * continue the numbering from a plausible head, announce a generation. */
static int fr__takeover(framering_writer *w) {
    uint8_t *base = w->base;
    const framering_geometry *g = &w->geo;
    uint64_t mask = g->slots - 1;
    uint64_t *cand = FR__CAST(uint64_t *, malloc(sizeof(uint64_t) * g->slots));
    if (cand == NULL)
        return fr__fail(&w->err, FRAMERING_ERR_SYSTEM, ENOMEM, "ring \"%s\": out of memory", w->name);
    size_t nc = 0;
    for (uint64_t i = 0; i < g->slots; i++) {
        uint8_t *slot = base + FR__SB_SIZE + i * g->slot_stride;
        fr__hdr *h = FR__CAST(fr__hdr *, (void *)slot);
        uint64_t *seq = fr__u64(slot, 0);
        uint64_t s = FR__LOAD(seq);
        if (s & 1) {
            /* Half-written by a writer that died: mark empty, make even. */
            h->frame_no = 0;
            h->payload_len = 0;
            FR__STORE_REL(seq, s + 1);
            continue;
        }
        uint64_t f = h->frame_no;
        if (f != 0 && f < FR__HALF && (f & mask) == i) cand[nc++] = f;
    }
    /* The plausible newest frame: drop frame numbers more than N above
     * every other one (a stray write), then take the largest. */
    qsort(cand, nc, sizeof cand[0], fr__cmp_desc);
    size_t top = 0;
    while (top + 1 < nc && cand[top] > cand[top + 1] + g->slots) top++;
    uint64_t maxf = nc ? cand[top] : 0;
    free(cand);
    uint64_t *headp = fr__u64(base, FR__SB_HEAD);
    uint64_t head = FR__LOAD(headp);
    if (head >= FR__HALF || (maxf != 0 && head > maxf + g->slots))
        head = maxf; /* absurd head: the slots say where the numbering is */
    else if (maxf > head && maxf <= head + g->slots)
        head = maxf; /* the writer died between a slot's commit and the head store */
    FR__STORE_REL(headp, head);
    w->next = head + 1;
    w->gen = FR__ADD(fr__u64(base, FR__SB_GEN), 1) + 1;
    FR__STORE(fr__u32(base, FR__SB_PID), (uint32_t)getpid());
    FR__STORE(fr__i64(base, FR__SB_START), fr__clock(CLOCK_REALTIME));
    FR__STORE_REL(fr__i64(base, FR__SB_HEARTBEAT), framering_now_ns());
    FR__STORE(&w->head, head);
    FR__ADD(fr__u32(base, FR__SB_NOTIFY), 1);
    fr__futex_wake(fr__u32(base, FR__SB_NOTIFY));
    return FRAMERING_OK;
}

static int fr__fallocate(int fd, uint64_t size) {
    for (;;) {
        if (fallocate(fd, 0, 0, (off_t)size) == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EOPNOTSUPP) return ftruncate(fd, (off_t)size) == 0 ? 0 : errno;
        return errno;
    }
}

#define FR__RETRY (-1) /* internal: another writer changed the name; start over */

#ifdef FRAMERING_TEST_HOOKS
/* Tests only: called between a writer's open of an existing file and its
 * lock, to stage the race the re-check after locking must catch. */
static void (*fr__test_before_lock)(const char *path);
#define FR__BEFORE_LOCK(path)                                                                                          \
    do {                                                                                                               \
        if (fr__test_before_lock) fr__test_before_lock(path);                                                          \
    } while (0)
#else
#define FR__BEFORE_LOCK(path) ((void)0)
#endif

/* fr__tmp_name builds DIR/.framering-tmp.NAME.<16 random hex digits>. */
static int fr__tmp_name(const framering_writer *w, char *tmp, size_t cap) {
    char hex[17];
    fr__random_hex(hex);
    int n = snprintf(tmp, cap, "%s/.framering-tmp.%s.%s", w->dir, w->name, hex);
    return n > 0 && (size_t)n < cap;
}

static int fr__wrap_sys(framering_writer *w, const char *op, const char *path, int er) {
    if (er == EACCES || er == EPERM)
        return fr__fail(&w->err, FRAMERING_ERR_PERMISSION, er,
                        "ring \"%s\": %s %s: %s; run as the ring's owner or remove %s", w->name, op, path, strerror(er),
                        w->path);
    return fr__fail(&w->err, FRAMERING_ERR_SYSTEM, er, "ring \"%s\": %s %s: %s", w->name, op, path, strerror(er));
}

/* fr__create builds a new segment with no name (O_TMPFILE), locked before
 * it has one, formats it and names it (D1.3): link for a fresh ring
 * (EEXIST: FR__RETRY), link to a random temporary name and rename over the
 * path for a replacement. */
static int fr__create(framering_writer *w, const fr__carry *carry, int replace) {
    const framering_geometry *g = &w->geo;
    char tmp[FRAMERING_PATH_MAX] = "";
    int named_tmp = 0; /* the fallback: the file has a temporary name from the start */
    int fd = -1, er = EOPNOTSUPP;
#ifndef FRAMERING_TEST_FORCE_NAMED_TMP /* the tests force the fallback below with it */
    if (access("/proc/self/fd", X_OK) == 0) {
        fd = open(w->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, w->mode);
        if (fd < 0) er = errno;
    }
#endif
    if (fd < 0) {
        if (er == ENOENT && access(w->dir, F_OK) != 0)
            return fr__fail(&w->err, FRAMERING_ERR_NOT_FOUND, er, "ring \"%s\": directory %s does not exist; create "
                                                                  "it or pick another dir", w->name, w->dir);
        if (er == EACCES || er == EPERM) return fr__wrap_sys(w, "create a file in", w->dir, er);
        /* No O_TMPFILE here (EOPNOTSUPP, EISDIR, EINVAL), or no /proc to
         * name it through: a temporary name, locked at once. */
        named_tmp = 1;
        for (int i = 0; i < 8 && fd < 0; i++) {
            if (!fr__tmp_name(w, tmp, sizeof tmp)) {
                errno = ENAMETOOLONG;
                break;
            }
            fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, w->mode);
            if (fd < 0 && errno != EEXIST) break;
        }
        if (fd < 0) {
            er = errno;
            if (er == ENOENT)
                return fr__fail(&w->err, FRAMERING_ERR_NOT_FOUND, er, "ring \"%s\": directory %s does not exist; "
                                                                      "create it or pick another dir", w->name, w->dir);
            return fr__wrap_sys(w, "create", tmp, er);
        }
        int le = fr__lock_write(fd);
        if (le != 0) {
            close(fd);
            unlink(tmp);
            return fr__wrap_sys(w, "lock", tmp, le);
        }
    }
    void *m = MAP_FAILED;
    int rc;
    if (fchmod(fd, w->mode) != 0) { /* the umask may have cleared bits asked for */
        rc = fr__wrap_sys(w, "fchmod", named_tmp ? tmp : w->dir, errno);
        goto fail;
    }
    if (!named_tmp && (er = fr__lock_write(fd)) != 0) {
        rc = fr__wrap_sys(w, "lock a new file in", w->dir, er);
        goto fail;
    }
    if ((er = fr__fallocate(fd, g->file_size)) != 0) {
        if (er == ENOSPC)
            rc = fr__fail(&w->err, FRAMERING_ERR_NO_SPACE, er,
                          "ring \"%s\": not enough space in the shared-memory file system %s: the ring needs %llu "
                          "bytes; free space there, use fewer slots or a smaller frame size, or in a container start "
                          "it with --shm-size=%llum or more",
                          w->name, w->dir, (unsigned long long)g->file_size,
                          (unsigned long long)((g->file_size + (64u << 20)) >> 20));
        else
            rc = fr__wrap_sys(w, "fallocate a file in", w->dir, er);
        goto fail;
    }
    m = mmap(NULL, (size_t)g->file_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (m == MAP_FAILED) {
        rc = fr__wrap_sys(w, "mmap a new file in", w->dir, errno);
        goto fail;
    }
    {
        uint8_t *base = FR__CAST(uint8_t *, m);
        fr__format_sb(base, g, fr__clock(CLOCK_REALTIME));
        if (carry && carry->valid) {
            FR__STORE(fr__u64(base, FR__SB_HEAD), carry->head);
            FR__STORE(fr__u64(base, FR__SB_GEN), carry->generation);
            FR__STORE(fr__u64(base, FR__SB_FRAMES), carry->frames);
            FR__STORE(fr__u64(base, FR__SB_BYTES), carry->bytes);
        }
        /* Readers may look before the takeover: show a live writer. */
        FR__STORE(fr__u32(base, FR__SB_PID), (uint32_t)getpid());
        FR__STORE_REL(fr__i64(base, FR__SB_HEARTBEAT), framering_now_ns());
    }
    {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (!replace) {
            int lr = named_tmp ? link(tmp, w->path) : linkat(AT_FDCWD, proc, AT_FDCWD, w->path, AT_SYMLINK_FOLLOW);
            if (lr != 0) {
                er = errno;
                if (er == EEXIST) {
                    rc = FR__RETRY; /* another writer won the race: go and meet it */
                    goto fail;
                }
                rc = fr__wrap_sys(w, "name the new ring", w->path, er);
                goto fail;
            }
            if (named_tmp) {
                unlink(tmp);
                tmp[0] = 0;
            }
        } else {
            if (!named_tmp) {
                int lr = -1;
                for (int i = 0; i < 8; i++) {
                    if (!fr__tmp_name(w, tmp, sizeof tmp)) {
                        errno = ENAMETOOLONG;
                        break;
                    }
                    lr = linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW);
                    if (lr == 0 || errno != EEXIST) break;
                }
                if (lr != 0) {
                    er = errno;
                    tmp[0] = 0;
                    rc = fr__wrap_sys(w, "name the new ring", w->dir, er);
                    goto fail;
                }
            }
            if (rename(tmp, w->path) != 0) {
                rc = fr__wrap_sys(w, "move the new ring into place at", w->path, errno);
                goto fail;
            }
            tmp[0] = 0;
        }
    }
    {
        /* Re-check: the path names our file (D1.3). */
        struct stat a, b;
        if (fstat(fd, &a) != 0 || lstat(w->path, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
            rc = FR__RETRY;
            goto fail;
        }
        w->fd = fd;
        w->base = FR__CAST(uint8_t *, m);
        w->dev = (uint64_t)a.st_dev;
        w->ino = (uint64_t)a.st_ino;
    }
    return fr__takeover(w);
fail:
    if (m != MAP_FAILED) munmap(m, (size_t)g->file_size);
    if (tmp[0]) unlink(tmp);
    close(fd);
    return rc;
}

static void *fr__heartbeat_main(void *arg) {
    framering_writer *w = FR__CAST(framering_writer *, arg);
    pthread_mutex_lock(&w->hb_mu);
    while (!w->hb_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + w->heartbeat_ns;
        ts.tv_sec = (time_t)(t / 1000000000);
        ts.tv_nsec = (long)(t % 1000000000);
        pthread_cond_timedwait(&w->hb_cond, &w->hb_mu, &ts);
        if (w->hb_stop) break;
        FR__STORE_REL(fr__i64(w->base, FR__SB_HEARTBEAT), framering_now_ns());
    }
    pthread_mutex_unlock(&w->hb_mu);
    return NULL;
}

static int fr__start_heartbeat(framering_writer *w) {
    pthread_condattr_t ca;
    int er = pthread_condattr_init(&ca);
    if (er == 0) er = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (er == 0) er = pthread_cond_init(&w->hb_cond, &ca);
    pthread_condattr_destroy(&ca);
    if (er != 0)
        return fr__fail(&w->err, FRAMERING_ERR_SYSTEM, er, "ring \"%s\": heartbeat: %s", w->name, strerror(er));
    er = pthread_mutex_init(&w->hb_mu, NULL);
    if (er != 0) {
        pthread_cond_destroy(&w->hb_cond);
        return fr__fail(&w->err, FRAMERING_ERR_SYSTEM, er, "ring \"%s\": heartbeat: %s", w->name, strerror(er));
    }
    /* The thread blocks every signal: they go to the application's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    er = pthread_create(&w->hb_thread, NULL, fr__heartbeat_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (er != 0) {
        pthread_mutex_destroy(&w->hb_mu);
        pthread_cond_destroy(&w->hb_cond);
        return fr__fail(&w->err, FRAMERING_ERR_SYSTEM, er, "ring \"%s\": start the heartbeat thread: %s", w->name,
                        strerror(er));
    }
    w->hb_running = 1;
    return FRAMERING_OK;
}

static void fr__stop_heartbeat(framering_writer *w) {
    if (!w->hb_running) return;
    pthread_mutex_lock(&w->hb_mu);
    w->hb_stop = 1;
    pthread_cond_signal(&w->hb_cond);
    pthread_mutex_unlock(&w->hb_mu);
    pthread_join(w->hb_thread, NULL);
    pthread_mutex_destroy(&w->hb_mu);
    pthread_cond_destroy(&w->hb_cond);
    w->hb_running = 0;
}

/* fr__unsafe_existing: the checks of D1.1 on an open existing file. */
static int fr__check_existing(framering_writer *w, int fd, struct stat *st) {
    if (fstat(fd, st) != 0) return fr__wrap_sys(w, "fstat", w->path, errno);
    char why[160];
    const char *unsafe = NULL;
    if (!S_ISREG(st->st_mode)) {
        unsafe = "is not a regular file";
    } else if (st->st_uid != geteuid()) {
        snprintf(why, sizeof why, "belongs to uid %u, not to you (uid %u)", (unsigned)st->st_uid, (unsigned)geteuid());
        unsafe = why;
    } else if (st->st_mode & 0002) {
        snprintf(why, sizeof why, "is world-writable (mode %04o)", (unsigned)(st->st_mode & 07777));
        unsafe = why;
    } else if ((st->st_mode & 0020) && !(w->mode & 0020)) {
        snprintf(why, sizeof why, "is group-writable (mode %04o)", (unsigned)(st->st_mode & 07777));
        unsafe = why;
    }
    if (unsafe)
        return fr__fail(&w->err, FRAMERING_ERR_UNSAFE, 0,
                        "ring \"%s\": unsafe shared-memory file: %s %s; remove %s and start again", w->name, w->path,
                        unsafe, w->path);
    return FRAMERING_OK;
}

int framering_writer_open(framering_writer *w, const char *name, const framering_writer_options *opts) {
    memset(w, 0, sizeof *w);
    w->fd = -1;
    framering_writer_options o;
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    int rc = fr__build_path(&w->err, w->path, sizeof w->path, o.dir, name);
    if (rc != FRAMERING_OK) return rc;
    snprintf(w->name, sizeof w->name, "%s", name);
    snprintf(w->dir, sizeof w->dir, "%s", o.dir && o.dir[0] ? o.dir : FRAMERING_DEFAULT_DIR);
    uint32_t slots = o.slots ? o.slots : 8;
    uint32_t meta = o.meta_bytes == 0 ? 4096u : o.meta_bytes < 0 ? 0u
                    : o.meta_bytes > (int64_t)FRAMERING_MAX_META_CAP ? FRAMERING_MAX_META_CAP + 1
                                                                     : (uint32_t)o.meta_bytes;
    if (o.max_frame_bytes == 0)
        return fr__fail(&w->err, FRAMERING_ERR_INVALID, 0,
                        "ring \"%s\": invalid frame: no frame size; set max_frame_bytes (e.g. width*height*channels)",
                        name);
    if (framering_geometry_make(slots, o.max_frame_bytes, meta, &w->geo) != FRAMERING_OK)
        return fr__fail(&w->err, FRAMERING_ERR_INVALID, 0,
                        "ring \"%s\": invalid geometry %u slots x %llu bytes (+%u metadata): slots must be a power of "
                        "two in [2, 65536], the frame size in [1, 2^34], metadata at most 1 MiB, the file at most "
                        "2^40 bytes",
                        name, slots, (unsigned long long)o.max_frame_bytes, meta);
    w->mode = o.mode ? o.mode : 0600;
    if (w->mode & ~0777u)
        return fr__fail(&w->err, FRAMERING_ERR_INVALID, 0, "ring \"%s\": mode %o has bits beyond 0777", name, w->mode);
    if (w->mode & 0002)
        return fr__fail(&w->err, FRAMERING_ERR_UNSAFE, 0,
                        "ring \"%s\": unsafe shared-memory file: mode %04o is world-writable; use 0600, 0640 or 0660",
                        name, w->mode);
    w->heartbeat_ns = o.heartbeat_ns > 0 ? o.heartbeat_ns : 100000000;

    fr__clean_stale_tmp(w->dir);
    rc = FR__RETRY;
    for (int attempt = 0; attempt < 8 && rc == FR__RETRY; attempt++) {
        int fd = open(w->path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            int er = errno;
            if (er == ENOENT) {
                rc = fr__create(w, NULL, 0);
                continue;
            }
            if (er == ELOOP)
                return fr__fail(&w->err, FRAMERING_ERR_UNSAFE, er,
                                "ring \"%s\": unsafe shared-memory file: %s is a symbolic link; remove it and start "
                                "again",
                                name, w->path);
            if (er == ENXIO || er == EISDIR)
                return fr__fail(&w->err, FRAMERING_ERR_UNSAFE, er,
                                "ring \"%s\": unsafe shared-memory file: %s is not a regular file; remove it and "
                                "start again",
                                name, w->path);
            return fr__wrap_sys(w, "open", w->path, er);
        }
        struct stat st;
        rc = fr__check_existing(w, fd, &st);
        if (rc != FRAMERING_OK) {
            close(fd);
            return rc;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        FR__BEFORE_LOCK(w->path);
        int er = fr__lock_write(fd);
        if (er == EAGAIN || er == EACCES) {
            uint8_t pidb[4] = {0, 0, 0, 0};
            uint32_t pid = 0;
            if (pread(fd, pidb, 4, FR__SB_PID) == 4) pid = fr__le32(pidb);
            close(fd);
            return fr__fail(&w->err, FRAMERING_ERR_BUSY, 0,
                            "ring \"%s\": ring already has a writer: already written by pid %u; stop that producer "
                            "or pick another name",
                            name, pid);
        }
        if (er != 0) {
            close(fd);
            return fr__wrap_sys(w, "lock", w->path, er);
        }
        /* Re-check (D1.2): still the file at the path, still linked. */
        struct stat now;
        if (lstat(w->path, &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino || st.st_nlink == 0 ||
            fstat(fd, &st) != 0 || st.st_nlink == 0) {
            close(fd);
            rc = FR__RETRY;
            continue;
        }
        uint8_t sb[FR__SB_SIZE];
        memset(sb, 0, sizeof sb);
        ssize_t got = pread(fd, sb, sizeof sb, 0);
        framering_geometry old;
        framering_error scratch;
        int valid = got == (ssize_t)sizeof sb &&
                    fr__parse_sb(&scratch, name, sb, (uint64_t)st.st_size, &old) == FRAMERING_OK;
        uint64_t gen = fr__le64(sb + FR__SB_GEN);
        if (valid && fr__same_geometry(&old, &w->geo) && (uint64_t)st.st_size == w->geo.file_size && gen < FR__HALF) {
            void *m = mmap(NULL, (size_t)w->geo.file_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
            if (m == MAP_FAILED) {
                er = errno;
                close(fd);
                return fr__wrap_sys(w, "mmap", w->path, er);
            }
            w->fd = fd;
            w->base = FR__CAST(uint8_t *, m);
            w->dev = (uint64_t)st.st_dev;
            w->ino = (uint64_t)st.st_ino;
            rc = fr__takeover(w);
        } else {
            /* Another geometry, or not a valid ring: replace it, carrying
             * the numbering over if its superblock is readable (D4). */
            fr__carry carry;
            if (got == (ssize_t)sizeof sb)
                fr__carry_from(sb, &carry);
            else
                memset(&carry, 0, sizeof carry);
            rc = fr__create(w, &carry, 1);
            if (rc == FRAMERING_OK) {
                /* Drop the lock on the old, now unlinked, file, then wake
                 * its readers: they find the writer gone and the name on a
                 * new inode. */
                void *om = carry.valid ? mmap(NULL, FR__SB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
                close(fd);
                if (om != MAP_FAILED) {
                    uint8_t *ob = FR__CAST(uint8_t *, om);
                    FR__ADD(fr__u32(ob, FR__SB_NOTIFY), 1);
                    fr__futex_wake(fr__u32(ob, FR__SB_NOTIFY));
                    munmap(om, FR__SB_SIZE);
                }
            } else {
                close(fd);
            }
        }
    }
    if (rc == FR__RETRY)
        return fr__fail(&w->err, FRAMERING_ERR_BUSY, 0,
                        "ring \"%s\": %s kept changing while opening it (another writer is starting?); try again",
                        name, w->path);
    if (rc != FRAMERING_OK) {
        if (w->base) munmap(w->base, (size_t)w->geo.file_size);
        if (w->fd >= 0) close(w->fd);
        w->base = NULL;
        w->fd = -1;
        return rc;
    }
    rc = fr__start_heartbeat(w);
    if (rc != FRAMERING_OK) {
        munmap(w->base, (size_t)w->geo.file_size);
        close(w->fd);
        w->base = NULL;
        w->fd = -1;
        return rc;
    }
    w->is_open = 1;
    return fr__ok(&w->err);
}

static uint8_t *fr__wslot(framering_writer *w, uint64_t n) {
    return w->base + FR__SB_SIZE + (n & (w->geo.slots - 1)) * w->geo.slot_stride;
}

int framering_writer_reserve(framering_writer *w, const framering_frame_info *info, framering_loan **loan) {
    if (!w->is_open) return fr__fail(&w->err, FRAMERING_ERR_CLOSED, 0, "ring \"%s\": reserve: the writer is closed",
                                     w->name);
    if (w->loan_active)
        return fr__fail(&w->err, FRAMERING_ERR_OUTSTANDING, 0,
                        "ring \"%s\": reserve frame %llu: previous reservation not committed or aborted; call "
                        "framering_writer_commit or framering_writer_abort first",
                        w->name, (unsigned long long)w->next);
    if (info == NULL) return fr__fail(&w->err, FRAMERING_ERR_INVALID, 0, "ring \"%s\": reserve: no frame info", w->name);
    framering_frame_info fi;
    uint64_t len = 0;
    framering_frame_info shape = *info;
    shape.meta = NULL;
    shape.meta_len = 0;
    int rc = fr__normalize(&w->err, w->name, &shape, &w->geo, &fi, &len);
    if (rc != FRAMERING_OK) return rc;
    uint64_t n = w->next;
    uint8_t *slot = fr__wslot(w, n);
    uint64_t *seq = fr__u64(slot, 0);
    uint64_t s = FR__LOAD(seq);
    uint64_t odd = (s & 1) ? s + 2 : s + 1; /* odd already: move on, so no reader that saw it can match */
    FR__STORE(seq, odd);
    __atomic_thread_fence(__ATOMIC_RELEASE); /* the slot's stores stay after the odd seq (§6 step 3) */
    framering_loan *l = &w->loan;
    memset(l, 0, sizeof *l);
    l->number = n;
    l->pixels = slot + w->geo.payload_offset;
    l->len = len;
    l->width = fi.width;
    l->height = fi.height;
    l->channels = fi.channels;
    l->format = fi.format;
    l->stride = fi.stride;
    l->meta = slot + FR__HDR_SIZE;
    l->meta_cap = w->geo.meta_cap;
    l->capture_ns = info->capture_ns;
    w->loan_odd = odd;
    w->loan_active = 1;
    w->loan_start = 0;
    if (loan) *loan = l;
    return fr__ok(&w->err);
}

int framering_writer_commit(framering_writer *w) {
    if (!w->loan_active)
        return fr__fail(&w->err, FRAMERING_ERR_INVALID, 0,
                        "ring \"%s\": commit: no reservation is out; call framering_writer_reserve first", w->name);
    framering_loan *l = &w->loan;
    if (l->meta_len > w->geo.meta_cap)
        return fr__fail(&w->err, FRAMERING_ERR_TOO_LARGE, 0,
                        "ring \"%s\": commit frame %llu: %u bytes of metadata, the slots hold %u; fix meta_len and "
                        "commit again, or abort",
                        w->name, (unsigned long long)l->number, l->meta_len, w->geo.meta_cap);
    int64_t start = w->loan_start ? w->loan_start : framering_now_ns();
    uint8_t *slot = fr__wslot(w, l->number);
    fr__hdr *h = FR__CAST(fr__hdr *, (void *)slot);
    h->frame_no = l->number;
    h->generation = w->gen;
    h->width = l->width;
    h->height = l->height;
    h->channels = l->channels;
    h->format = l->format;
    h->stride = l->stride;
    h->meta_len = l->meta_len;
    h->payload_len = l->len;
    h->publish_ns = start;
    h->capture_ns = l->capture_ns ? l->capture_ns : start;
    h->wall_ns = fr__clock(CLOCK_REALTIME);
    FR__STORE_REL(fr__u64(slot, 0), w->loan_odd + 1); /* even: every store above is visible first */
    uint8_t *b = w->base;
    FR__STORE_REL(fr__u64(b, FR__SB_HEAD), l->number);
    FR__ADD(fr__u64(b, FR__SB_FRAMES), 1);
    FR__ADD(fr__u64(b, FR__SB_BYTES), l->len);
    FR__ADD(fr__u32(b, FR__SB_NOTIFY), 1);
    fr__futex_wake(fr__u32(b, FR__SB_NOTIFY));
    w->loan_active = 0;
    w->next = l->number + 1;
    FR__ADD_RELAXED(&w->frames, 1);
    FR__ADD_RELAXED(&w->bytes, l->len);
    FR__STORE(&w->head, l->number);
    return fr__ok(&w->err);
}

void framering_writer_abort(framering_writer *w) {
    if (!w->loan_active) return;
    uint8_t *slot = fr__wslot(w, w->loan.number);
    fr__hdr *h = FR__CAST(fr__hdr *, (void *)slot);
    /* The frame the slot held was partly overwritten: readers must not see
     * it again. */
    h->frame_no = 0;
    h->payload_len = 0;
    FR__STORE_REL(fr__u64(slot, 0), w->loan_odd + 1);
    w->loan_active = 0;
    FR__ADD_RELAXED(&w->aborts, 1);
}

int framering_writer_publish(framering_writer *w, const framering_frame_info *info, const void *pixels, size_t size,
                             uint64_t *number) {
    if (!w->is_open) return fr__fail(&w->err, FRAMERING_ERR_CLOSED, 0, "ring \"%s\": publish: the writer is closed",
                                     w->name);
    if (info == NULL || pixels == NULL)
        return fr__fail(&w->err, FRAMERING_ERR_INVALID, 0, "ring \"%s\": publish: no frame info or pixels", w->name);
    int64_t start = framering_now_ns();
    framering_frame_info fi = *info;
    if (fi.format == FRAMERING_RAW && fi.len == 0) fi.len = size;
    framering_frame_info norm;
    uint64_t len = 0;
    int rc = fr__normalize(&w->err, w->name, &fi, &w->geo, &norm, &len);
    if (rc != FRAMERING_OK) return rc;
    if (size < len)
        return fr__fail(&w->err, FRAMERING_ERR_INVALID, 0,
                        "ring \"%s\": publish: invalid frame: buffer has %zu bytes, %ux%u %s with stride %u needs %llu",
                        w->name, size, norm.width, norm.height, framering_format_name(norm.format), norm.stride,
                        (unsigned long long)len);
    if (fi.meta_len > 0 && fi.meta == NULL)
        return fr__fail(&w->err, FRAMERING_ERR_INVALID, 0, "ring \"%s\": publish: meta_len %u but meta is NULL",
                        w->name, fi.meta_len);
    framering_loan *l;
    rc = framering_writer_reserve(w, &fi, &l);
    if (rc != FRAMERING_OK) return rc;
    w->loan_start = start;
    memcpy(l->pixels, pixels, (size_t)len);
    if (fi.meta_len) memcpy(l->meta, fi.meta, fi.meta_len);
    l->meta_len = fi.meta_len;
    uint64_t n = l->number;
    rc = framering_writer_commit(w);
    if (rc == FRAMERING_OK && number) *number = n;
    return rc;
}

static int fr__writer_close(framering_writer *w, int remove_file) {
    if (w == NULL || !w->is_open) return FRAMERING_OK;
    fr__stop_heartbeat(w);
    framering_writer_abort(w);
    int rc = FRAMERING_OK;
    if (remove_file) {
        /* Unlink only our own file, while the lock still keeps others out. */
        struct stat st;
        if (lstat(w->path, &st) == 0 && (uint64_t)st.st_dev == w->dev && (uint64_t)st.st_ino == w->ino) {
            if (unlink(w->path) != 0) rc = fr__wrap_sys(w, "remove", w->path, errno);
        }
    }
    /* Drop the lock first, then wake readers: they find it gone at once.
     * The mapping outlives the descriptor. */
    close(w->fd);
    w->fd = -1;
    FR__ADD(fr__u32(w->base, FR__SB_NOTIFY), 1);
    fr__futex_wake(fr__u32(w->base, FR__SB_NOTIFY));
    munmap(w->base, (size_t)w->geo.file_size);
    w->base = NULL;
    w->is_open = 0;
    return rc == FRAMERING_OK ? fr__ok(&w->err) : rc;
}

int framering_writer_close(framering_writer *w) { return fr__writer_close(w, 0); }
int framering_writer_remove(framering_writer *w) { return fr__writer_close(w, 1); }

void framering_writer_stats_get(framering_writer *w, framering_writer_stats *st) {
    st->frames = FR__LOAD(&w->frames);
    st->bytes = FR__LOAD(&w->bytes);
    st->aborts = FR__LOAD(&w->aborts);
    st->generation = w->gen;
    st->head = FR__LOAD(&w->head);
}

framering_geometry framering_writer_geometry(const framering_writer *w) { return w->geo; }
uint64_t framering_writer_generation(const framering_writer *w) { return w->gen; }
uint64_t framering_writer_next(const framering_writer *w) { return w->next; }
const char *framering_writer_path(const framering_writer *w) { return w->path; }
const char *framering_writer_error(const framering_writer *w) { return w->err.msg; }

#ifdef __cplusplus
}
#endif
#endif /* FRAMERING_IMPLEMENTATION */
