/* oldwriter: an old-style legacy sender for framering's tests.
 *
 *   oldwriter PATH WIDTH HEIGHT CHANNELS RATE_HZ FRAMES
 *
 * Start-up as the old sender: unlink PATH, create it 0666, ftruncate to
 * 24 + w*h*c, map it. Then FRAMES frames (0: until killed), at RATE_HZ
 * (0: full speed), each: frame_valid = 0, header, memcpy pixels, full
 * barrier, frame_valid = 1. Pixels carry internal/pattern's pattern for
 * frame numbers 1, 2, 3, ...  SIGUSR1 makes it redo the start-up (unlink +
 * recreate, a new inode) before the next frame; it prints "restarted N"
 * (N = next frame number) when done. It prints "ready" after the first
 * start-up and "done N" at the end. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "oldpeer.h"

static volatile sig_atomic_t restart_req;
static void on_usr1(int sig) { (void)sig; restart_req = 1; }

static uint8_t *start(const char *path, size_t size) {
	unlink(path); /* shm_unlink(name) is unlink("/dev/shm/" name) */
	int fd = open(path, O_CREAT | O_RDWR, 0666);
	if (fd < 0) { perror("open"); exit(1); }
	if (ftruncate(fd, (off_t)size) != 0) { perror("ftruncate"); exit(1); }
	uint8_t *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) { perror("mmap"); exit(1); }
	close(fd);
	return m;
}

static int64_t now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
	if (argc != 7) { fprintf(stderr, "usage: oldwriter PATH W H C RATE_HZ FRAMES\n"); return 2; }
	const char *path = argv[1];
	int w = atoi(argv[2]), h = atoi(argv[3]), c = atoi(argv[4]);
	double rate = atof(argv[5]);
	long frames = atol(argv[6]);
	size_t n = (size_t)w * h * c, size = 24 + n;
	crc_init();
	signal(SIGUSR1, on_usr1);
	uint8_t *m = start(path, size);
	struct legacy_header *hdr = (struct legacy_header *)m;
	uint8_t *src = malloc(n);
	printf("ready\n");
	fflush(stdout);
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	long period = rate > 0 ? (long)(1e9 / rate) : 0;
	uint64_t f;
	for (f = 1; frames == 0 || (long)f <= frames; f++) {
		if (restart_req) {
			restart_req = 0;
			munmap(m, size);
			m = start(path, size);
			hdr = (struct legacy_header *)m;
			printf("restarted %llu\n", (unsigned long long)f);
			fflush(stdout);
		}
		pattern_fill(src, n, f); /* "grab" the next frame */
		hdr->frame_valid = 0;
		hdr->width = w;
		hdr->height = h;
		hdr->channels = c;
		hdr->timestamp_ms = now_ms();
		memcpy(m + 24, src, n);
		__sync_synchronize();
		hdr->frame_valid = 1;
		if (period) {
			next.tv_nsec += period;
			while (next.tv_nsec >= 1000000000L) { next.tv_nsec -= 1000000000L; next.tv_sec++; }
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		}
	}
	printf("done %llu\n", (unsigned long long)(f - 1));
	fflush(stdout);
	return 0;
}
