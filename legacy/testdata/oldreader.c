/* oldreader: an old-style legacy receiver for framering's tests.
 *
 *   oldreader PATH WIDTH HEIGHT CHANNELS
 *
 * Opens PATH O_RDONLY and maps exactly 24 + w*h*c bytes read-only from
 * offset 0, for the size it was told. For every line on stdin it runs the
 * old read sequence: read the header; if width/height/channels differ,
 * print "mismatch W H C" and exit 3; if frame_valid == 1 copy the pixels,
 * else sleep 1 ms and retry. It prints "frame F TS CRC": F the number in
 * the pattern's first 8 bytes, TS the header timestamp, CRC the CRC-32C of
 * all copied pixel bytes (hex). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "oldpeer.h"

int main(int argc, char **argv) {
	if (argc != 5) { fprintf(stderr, "usage: oldreader PATH W H C\n"); return 2; }
	int w = atoi(argv[2]), h = atoi(argv[3]), c = atoi(argv[4]);
	size_t n = (size_t)w * h * c, size = 24 + n;
	crc_init();
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) { perror("open"); return 1; }
	uint8_t *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) { perror("mmap"); return 1; }
	const struct legacy_header *hdr = (const struct legacy_header *)m;
	uint8_t *frame = malloc(n);
	char line[64];
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof line, stdin)) {
		for (;;) {
			int32_t hw = hdr->width, hh = hdr->height, hc = hdr->channels;
			int64_t ts = hdr->timestamp_ms;
			int32_t valid = hdr->frame_valid;
			if (hw != w || hh != h || hc != c) {
				printf("mismatch %d %d %d\n", hw, hh, hc);
				return 3;
			}
			if (valid == 1) {
				memcpy(frame, m + 24, n);
				uint64_t f = 0;
				for (int i = 7; i >= 0; i--)
					f = f << 8 | frame[i];
				printf("frame %llu %lld %08x\n", (unsigned long long)f, (long long)ts, crc32c(frame, n));
				fflush(stdout);
				break;
			}
			usleep(1000);
		}
	}
	return 0;
}
