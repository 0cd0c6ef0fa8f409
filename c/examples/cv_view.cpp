// framering-cv-view: a C++ reader that wraps views of ring slots in
// cv::Mat headers (no copy), computes each frame's mean, and can write a
// PNG of a frame or compare frames with an image file.
//
//   framering-cv-view --ring cam0 --count 10
//   framering-cv-view --ring cam0 --count 1 --save /tmp/cam0.png
//   framering-cv-view --ring cam0 --count 5 --expect photo.png
//
// Work done on a view is trustworthy only if framering_reader_release says
// so: a frame the writer overwrote meanwhile is reported and discarded
// (its PNG is not kept, its comparison not counted).
//
// Exit status: 0 ok, 1 failure (including an --expect mismatch), 2 usage.
#define FRAMERING_IMPLEMENTATION
#include "../framering.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

namespace {

const char *prog = "framering-cv-view";
volatile std::sig_atomic_t stop_flag = 0;
framering_reader rd;
volatile std::sig_atomic_t rd_open = 0;

void on_stop(int) {
    stop_flag = 1;
    if (rd_open) framering_reader_cancel(&rd);
}

[[noreturn]] void usage_error(const std::string &msg) {
    std::fprintf(stderr, "%s: %s\nrun '%s --help' for usage\n", prog, msg.c_str(), prog);
    std::exit(2);
}

// mat_type is the OpenCV type of a frame's pixels, or -1 (raw).
int mat_type(const framering_frame &f) {
    switch (f.format) {
    case FRAMERING_GRAY8: return CV_8UC1;
    case FRAMERING_YUYV: return CV_8UC2;
    case FRAMERING_BGR8:
    case FRAMERING_RGB8: return CV_8UC3;
    case FRAMERING_BGRA8:
    case FRAMERING_RGBA8: return CV_8UC4;
    case FRAMERING_GRAY16: return CV_16UC1;
    }
    return -1;
}

} // namespace

int main(int argc, char **argv) {
    std::string ring, dir = FRAMERING_DEFAULT_DIR, save, expect, mode = "all";
    long long count = 0;
    double timeout_s = 0;
    bool wait = false;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            size_t eq = a.find('=');
            if (eq != std::string::npos) return a.substr(eq + 1);
            if (i + 1 >= argc) usage_error("flag needs an argument: " + a);
            return argv[++i];
        };
        std::string name = a.substr(0, a.find('='));
        if (name == "--help" || name == "-h") {
            std::printf("usage: %s --ring NAME [--dir DIR] [--mode all|latest] [--count N] [--save FILE.png]\n"
                        "       [--expect IMAGE] [--wait] [--timeout SECONDS]\n"
                        "Prints 'frame N WxH format mean B G R' per frame read in place.\n",
                        prog);
            return 0;
        } else if (name == "--ring") ring = value();
        else if (name == "--dir") dir = value();
        else if (name == "--mode") mode = value();
        else if (name == "--count") count = std::atoll(value().c_str());
        else if (name == "--save") save = value();
        else if (name == "--expect") expect = value();
        else if (name == "--wait") wait = true;
        else if (name == "--timeout") timeout_s = std::atof(value().c_str());
        else usage_error("unknown flag: " + a);
    }
    if (ring.empty()) usage_error("--ring NAME is required");
    if (mode != "all" && mode != "latest") usage_error("--mode \"" + mode + "\": use all or latest");
    cv::Mat expected;
    if (!expect.empty()) {
        expected = cv::imread(expect, cv::IMREAD_UNCHANGED);
        if (expected.empty()) {
            std::fprintf(stderr, "%s: --expect %s: cannot read that image\n", prog, expect.c_str());
            return 1;
        }
    }
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    framering_reader_options ro{};
    ro.dir = dir.c_str();
    ro.mode = mode == "latest" ? FRAMERING_LATEST : FRAMERING_ORDERED;
    int64_t timeout = timeout_s > 0 ? static_cast<int64_t>(timeout_s * 1e9) : -1;
    int rc = wait ? framering_reader_open_wait(&rd, ring.c_str(), &ro, timeout)
                  : framering_reader_open(&rd, ring.c_str(), &ro);
    if (rc != FRAMERING_OK) {
        std::fprintf(stderr, "%s: %s\n", prog, framering_reader_error(&rd));
        return 1;
    }
    rd_open = 1;
    long long good = 0, matched = 0, mismatched = 0, discarded = 0;
    int status = 0;
    while (!stop_flag && (count == 0 || good < count)) {
        framering_frame f;
        rc = framering_reader_acquire(&rd, &f, timeout);
        if (rc == FRAMERING_ERR_WRITER_GONE) {
            std::fprintf(stderr, "%s: %s\n", prog, framering_reader_error(&rd));
            continue;
        }
        if (rc == FRAMERING_ERR_CANCELED) break;
        if (rc != FRAMERING_OK) {
            std::fprintf(stderr, "%s: %s\n", prog, framering_reader_error(&rd));
            status = 1;
            break;
        }
        int type = mat_type(f);
        cv::Scalar mean;
        bool same = true, saved = false;
        if (type >= 0) {
            // A Mat header over the slot: no copy. The mapping is read-only:
            // the const_cast only satisfies cv::Mat's constructor; writing
            // through m would fault.
            const cv::Mat m(static_cast<int>(f.height), static_cast<int>(f.width), type,
                            const_cast<uint8_t *>(f.pixels), f.stride);
            mean = cv::mean(m);
            if (!expected.empty())
                same = expected.size() == m.size() && expected.type() == m.type() &&
                       cv::norm(expected, m, cv::NORM_INF) == 0;
            if (!save.empty()) saved = cv::imwrite(save, m);
        }
        rc = framering_reader_release(&rd);
        if (rc == FRAMERING_ERR_OVERWRITTEN) {
            // Everything computed from the view is garbage: drop it.
            std::fprintf(stderr, "%s: %s\n", prog, framering_reader_error(&rd));
            if (saved) std::remove(save.c_str());
            discarded++;
            continue;
        }
        if (rc != FRAMERING_OK) {
            std::fprintf(stderr, "%s: %s\n", prog, framering_reader_error(&rd));
            status = 1;
            break;
        }
        good++;
        if (!expected.empty()) (same ? matched : mismatched)++;
        if (type < 0)
            std::printf("frame %llu raw %llu bytes\n", static_cast<unsigned long long>(f.number),
                        static_cast<unsigned long long>(f.len));
        else
            std::printf("frame %llu %ux%u %s mean %.2f %.2f %.2f%s\n", static_cast<unsigned long long>(f.number),
                        f.width, f.height, framering_format_name(f.format), mean[0], mean[1], mean[2],
                        expected.empty() ? "" : same ? " matches" : " DIFFERS");
        std::fflush(stdout);
    }
    rd_open = 0;
    framering_reader_stats st;
    framering_reader_stats_get(&rd, &st);
    framering_reader_close(&rd);
    std::printf("viewed %lld frames, discarded %lld overwritten, dropped %llu", good, discarded,
                static_cast<unsigned long long>(st.lapped + st.skipped + st.overwritten + st.corrupt));
    if (!expected.empty()) std::printf(", %lld match %s, %lld differ", matched, expect.c_str(), mismatched);
    std::printf("\n");
    if (mismatched > 0) {
        std::fprintf(stderr, "%s: %lld frames differ from %s\n", prog, mismatched, expect.c_str());
        status = 1;
    }
    return status;
}
