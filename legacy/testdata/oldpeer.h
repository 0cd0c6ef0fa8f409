/* Shared by the test peers: the legacy header and the test pattern.
 * Written from the layout facts in seed-protocol.md and the formula in
 * internal/pattern (frame number, CRC-32C of bytes 16.., length, stripes
 * (i>>4)+f). */
#include <stdint.h>
#include <stddef.h>

struct __attribute__((packed)) legacy_header {
	int32_t width;
	int32_t height;
	int32_t channels;
	int64_t timestamp_ms; /* offset 12: unaligned */
	volatile int32_t frame_valid;
};
_Static_assert(sizeof(struct legacy_header) == 24, "header is 24 bytes");
_Static_assert(offsetof(struct legacy_header, timestamp_ms) == 12, "timestamp at 12");
_Static_assert(offsetof(struct legacy_header, frame_valid) == 20, "valid at 20");

static uint32_t crc_table[256];

static void crc_init(void) {
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1; /* Castagnoli, reflected */
		crc_table[i] = c;
	}
}

static uint32_t crc32c(const uint8_t *p, size_t n) {
	uint32_t c = 0xFFFFFFFFu;
#if defined(__SSE4_2__)
	/* The CPU's CRC-32C instruction: fast enough that the writer spends
	 * most of its time inside the write sequence, where tears happen. */
	uint64_t c64 = c;
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;
		__builtin_memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
	}
	c = (uint32_t)c64;
#endif
	while (n--)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static void put_le(uint8_t *p, uint64_t v, int n) {
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* pattern_fill writes frame f's pattern into b[0..n). */
static inline void pattern_fill(uint8_t *b, size_t n, uint64_t f) {
	for (size_t i = 16; i < n; i++)
		b[i] = (uint8_t)((i >> 4) + f);
	put_le(b, f, 8);
	put_le(b + 8, crc32c(b + 16, n - 16), 4);
	put_le(b + 12, (uint32_t)n, 4);
}
