/* The C quick start of c/README.md: a writer and a reader of ring
 * "quickstart" in one program (in real use they are two processes).
 * Built by `make c`; run c/build/framering-quickstart. */
#define FRAMERING_IMPLEMENTATION
#include "../framering.h"

#include <stdio.h>
#include <string.h>

int main(void) {
    /* Writer: create the ring (or take it over), fill a loaned slot in place. */
    static framering_writer w;
    framering_writer_options wo = {0};
    wo.max_frame_bytes = 640 * 480 * 3; /* slot capacity; 8 slots, 4 KiB metadata by default */
    if (framering_writer_open(&w, "quickstart", &wo) != FRAMERING_OK) {
        fprintf(stderr, "%s\n", framering_writer_error(&w)); /* says what happened and what to do */
        return 1;
    }
    framering_frame_info fi = {0};
    fi.width = 640;
    fi.height = 480;
    fi.format = FRAMERING_BGR8;
    framering_loan *l;
    if (framering_writer_reserve(&w, &fi, &l) == FRAMERING_OK) {
        memset(l->pixels, 128, l->len);         /* l->len == 640*480*3 bytes, rows l->stride apart */
        l->meta_len = (uint32_t)snprintf((char *)l->meta, l->meta_cap, "{\"boxes\":[]}");
        framering_writer_commit(&w);            /* readers wake up now */
    }

    /* Reader: open read-only, take the newest frame. */
    static framering_reader r;
    framering_reader_options ro = {0};          /* ordered mode, start at the newest frame */
    if (framering_reader_open(&r, "quickstart", &ro) != FRAMERING_OK) {
        fprintf(stderr, "%s\n", framering_reader_error(&r));
        return 1;
    }
    framering_frame f;
    int rc = framering_reader_read(&r, NULL, 0, &f, 1000000000); /* a private copy; wait up to 1 s */
    if (rc == FRAMERING_OK)
        printf("frame %llu: %ux%u %s, pixel 0 = %u, metadata %.*s\n", (unsigned long long)f.number, f.width,
               f.height, framering_format_name(f.format), f.pixels[0], (int)f.meta_len, (const char *)f.meta);
    else
        fprintf(stderr, "%s\n", framering_reader_error(&r)); /* e.g. FRAMERING_ERR_TIMEOUT */

    framering_reader_stats st;
    framering_reader_stats_get(&r, &st);
    printf("delivered %llu, dropped %llu\n", (unsigned long long)st.delivered,
           (unsigned long long)(st.lapped + st.skipped + st.overwritten + st.corrupt));
    framering_reader_close(&r);
    framering_writer_remove(&w); /* framering_writer_close would leave the ring for readers */
    return rc == FRAMERING_OK ? 0 : 1;
}
