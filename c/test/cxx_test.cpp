// The header from C++17: built twice by `make test-c`, once with the
// implementation compiled as C++ (FRAMERING_IMPLEMENTATION here), once
// with it compiled as C11 in impl.c and linked in (extern "C" linkage).
// A writer and a reader in one process: frames by loan and by copy, read
// by copy and by view, every byte checked.
#ifdef CXX_TEST_IMPL
#define FRAMERING_IMPLEMENTATION
#endif
#include "../framering.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

static int failures = 0;

#define EXPECT(cond, what)                                                                                             \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            std::fprintf(stderr, "FAIL cxx_test line %d: %s: %s\n", __LINE__, #cond, what);                           \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

int main() {
    char tmpl[] = "/dev/shm/framering-cxxtest-XXXXXX";
    std::string dir = mkdtemp(tmpl) ? tmpl : "";
    if (dir.empty()) {
        std::perror("mkdtemp");
        return 1;
    }
    static framering_writer w;
    framering_writer_options wo{};
    wo.dir = dir.c_str();
    wo.slots = 4;
    wo.max_frame_bytes = 32 * 24 * 3;
    EXPECT(framering_writer_open(&w, "cxx", &wo) == FRAMERING_OK, framering_writer_error(&w));
    static framering_reader r;
    framering_reader_options ro{};
    ro.dir = dir.c_str();
    ro.start = FRAMERING_START_NEXT;
    EXPECT(framering_reader_open(&r, "cxx", &ro) == FRAMERING_OK, framering_reader_error(&r));

    framering_frame_info fi{};
    fi.width = 32;
    fi.height = 24;
    fi.format = FRAMERING_BGR8;
    framering_loan *l = nullptr;
    EXPECT(framering_writer_reserve(&w, &fi, &l) == FRAMERING_OK, framering_writer_error(&w));
    framering_pattern_fill(l->pixels, l->len, l->number);
    EXPECT(framering_writer_commit(&w) == FRAMERING_OK, framering_writer_error(&w));
    std::vector<uint8_t> buf(32 * 24 * 3);
    framering_pattern_fill(buf.data(), buf.size(), 2);
    uint64_t n = 0;
    EXPECT(framering_writer_publish(&w, &fi, buf.data(), buf.size(), &n) == FRAMERING_OK, framering_writer_error(&w));
    EXPECT(n == 2, "second frame number");

    framering_frame f;
    std::vector<uint8_t> dst(buf.size());
    EXPECT(framering_reader_read(&r, dst.data(), dst.size(), &f, 0) == FRAMERING_OK, framering_reader_error(&r));
    EXPECT(f.number == 1 && framering_pattern_check(f.pixels, f.len, 1, nullptr, 0) == 0, "frame 1 by copy");
    EXPECT(framering_reader_acquire(&r, &f, 0) == FRAMERING_OK, framering_reader_error(&r));
    EXPECT(f.number == 2 && framering_pattern_check(f.pixels, f.len, 2, nullptr, 0) == 0, "frame 2 by view");
    EXPECT(framering_reader_release(&r) == FRAMERING_OK, framering_reader_error(&r));
    EXPECT(framering_reader_read(&r, nullptr, 0, &f, 0) == FRAMERING_ERR_TIMEOUT, "no third frame");
    framering_reader_stats st;
    framering_reader_stats_get(&r, &st);
    EXPECT(st.delivered == 2 && st.window_frames == 2, "stats");
    EXPECT(std::string(framering_code_name(FRAMERING_ERR_BUSY)) == "FRAMERING_ERR_BUSY", "code names");
    framering_reader_close(&r);
    EXPECT(framering_writer_remove(&w) == FRAMERING_OK, framering_writer_error(&w));
    rmdir(dir.c_str());
    std::printf("%s cxx_test (%s)\n", failures ? "FAIL" : "ok  ",
#ifdef CXX_TEST_IMPL
                "implementation compiled as C++17"
#else
                "C11 implementation linked into C++17"
#endif
    );
    return failures ? 1 : 0;
}
