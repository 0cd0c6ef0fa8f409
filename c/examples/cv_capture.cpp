// framering-cv-capture: OpenCV frames straight into loaned ring slots.
//
// Each frame is produced into a cv::Mat header laid over the slot the
// writer lends (framering_writer_reserve): cv::VideoCapture::read decodes
// into it, drawing functions draw into it, an image is copied into it.
// No intermediate buffer, no copy at publish time.
//
//   framering-cv-capture --ring cam0 --camera 0
//   framering-cv-capture --ring cam0 --video clip.mp4 --fps 30
//   framering-cv-capture --ring cam0 --image photo.png --fps 5 --count 100
//   framering-cv-capture --ring cam0 --synthetic 640x480 --fps 30
//
// Exit status: 0 ok, 1 failure, 2 usage error.
#define FRAMERING_IMPLEMENTATION
#include "../framering.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

namespace {

const char *prog = "framering-cv-capture";
volatile std::sig_atomic_t stop_flag = 0;

void on_stop(int) { stop_flag = 1; }

[[noreturn]] void usage_error(const std::string &msg) {
    std::fprintf(stderr, "%s: %s\nrun '%s --help' for usage\n", prog, msg.c_str(), prog);
    std::exit(2);
}

void usage() {
    std::printf("usage: %s --ring NAME (--image FILE | --video FILE | --camera N | --synthetic WxH) [flags]\n"
                "\n"
                "Captures with OpenCV straight into loaned slots of ring NAME (a cv::Mat\n"
                "header over the slot), as BGR8 frames, until --count frames, the end of the\n"
                "video, or SIGINT/SIGTERM. Prints a line per second to stderr and 'sent N\n"
                "frames (in place N, copied N)' to stdout at exit.\n"
                "\n"
                "  --ring NAME        ring name (required)\n"
                "  --dir DIR          shared-memory directory (default /dev/shm)\n"
                "  --image FILE       an image (cv::imread), published again and again\n"
                "  --video FILE       a video file (cv::VideoCapture)\n"
                "  --camera N         camera N (cv::VideoCapture)\n"
                "  --synthetic WxH    a test card drawn into the slot\n"
                "  --fps F            frames per second, 0: as fast as possible (default 30)\n"
                "  --count N          stop after N frames (0: no limit)\n"
                "  --slots N          slot count of a new ring (default 8)\n"
                "  --remove           unlink the ring at exit\n"
                "  -q, --quiet        no line per second\n",
                prog);
}

// draw_card draws frame n of the synthetic test card into m (in place).
void draw_card(cv::Mat &m, uint64_t n) {
    for (int y = 0; y < m.rows; y++) {
        uint8_t *row = m.ptr<uint8_t>(y);
        for (int x = 0; x < m.cols; x++) {
            row[3 * x + 0] = static_cast<uint8_t>(x * 255 / std::max(1, m.cols - 1));
            row[3 * x + 1] = static_cast<uint8_t>(y * 255 / std::max(1, m.rows - 1));
            row[3 * x + 2] = static_cast<uint8_t>(n);
        }
    }
    int bar = static_cast<int>(n % static_cast<uint64_t>(m.cols));
    cv::rectangle(m, cv::Rect(bar, 0, std::max(1, m.cols / 16), m.rows), cv::Scalar(255, 255, 255), cv::FILLED);
    cv::putText(m, std::to_string(n), cv::Point(4, std::max(12, m.rows / 4)), cv::FONT_HERSHEY_SIMPLEX,
                std::max(0.3, m.rows / 240.0), cv::Scalar(0, 0, 0), 2);
}

} // namespace

int main(int argc, char **argv) {
    std::string ring, dir = FRAMERING_DEFAULT_DIR, image, video, synthetic;
    int camera = -1;
    double fps = 30;
    long long count = 0, slots = 8;
    bool remove_at_exit = false, quiet = false;
    int sources = 0;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i], v;
        auto value = [&]() -> std::string {
            size_t eq = a.find('=');
            if (eq != std::string::npos) return a.substr(eq + 1);
            if (i + 1 >= argc) usage_error("flag needs an argument: " + a);
            return argv[++i];
        };
        std::string name = a.substr(0, a.find('='));
        if (name == "--help" || name == "-h") {
            usage();
            return 0;
        } else if (name == "--ring") ring = value();
        else if (name == "--dir") dir = value();
        else if (name == "--image") image = value(), sources++;
        else if (name == "--video") video = value(), sources++;
        else if (name == "--camera") camera = std::atoi(value().c_str()), sources++;
        else if (name == "--synthetic") synthetic = value(), sources++;
        else if (name == "--fps") fps = std::atof(value().c_str());
        else if (name == "--count") count = std::atoll(value().c_str());
        else if (name == "--slots") slots = std::atoll(value().c_str());
        else if (name == "--remove") remove_at_exit = true;
        else if (name == "--quiet" || name == "-q") quiet = true;
        else usage_error("unknown flag: " + a);
    }
    if (ring.empty()) usage_error("--ring NAME is required");
    if (sources != 1) usage_error("give exactly one source (--image, --video, --camera or --synthetic)");
    if (fps < 0 || count < 0) usage_error("--fps and --count must not be negative");

    // Open the source first: bad input leaves no ring behind.
    cv::Mat still, first;
    cv::VideoCapture cap;
    int w = 0, h = 0;
    if (!image.empty()) {
        still = cv::imread(image, cv::IMREAD_COLOR);
        if (still.empty()) {
            std::fprintf(stderr, "%s: image %s: cannot read it; give a readable image file (PNG, JPEG, ...)\n", prog,
                         image.c_str());
            return 1;
        }
        w = still.cols, h = still.rows;
    } else if (!synthetic.empty()) {
        if (std::sscanf(synthetic.c_str(), "%dx%d", &w, &h) != 2 || w <= 0 || h <= 0 || w > (1 << 20) ||
            h > (1 << 20))
            usage_error("--synthetic \"" + synthetic + "\" is not WxH (example: 640x480)");
    } else {
        bool ok = video.empty() ? cap.open(camera) : cap.open(video);
        if (!ok || !cap.read(first) || first.empty()) {
            std::fprintf(stderr, "%s: %s: cannot open it or read a frame; check the %s\n", prog,
                         video.empty() ? ("camera " + std::to_string(camera)).c_str() : video.c_str(),
                         video.empty() ? "camera index and permissions" : "file and OpenCV's video backends");
            return 1;
        }
        if (first.type() != CV_8UC3) {
            std::fprintf(stderr, "%s: the source gives %s frames, not 8-bit BGR\n", prog,
                         cv::typeToString(first.type()).c_str());
            return 1;
        }
        w = first.cols, h = first.rows;
        if (!video.empty() && fps == 30 && cap.get(cv::CAP_PROP_FPS) > 0) fps = cap.get(cv::CAP_PROP_FPS);
    }

    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    static framering_writer wr;
    framering_writer_options wo{};
    wo.dir = dir.c_str();
    wo.slots = static_cast<uint32_t>(slots);
    wo.max_frame_bytes = static_cast<uint64_t>(w) * h * 3;
    if (framering_writer_open(&wr, ring.c_str(), &wo) != FRAMERING_OK) {
        std::fprintf(stderr, "%s: %s\n", prog, framering_writer_error(&wr));
        return 1;
    }
    std::printf("ring \"%s\": %dx%dx3 bgr8, generation %llu, %s\n", ring.c_str(), w, h,
                static_cast<unsigned long long>(framering_writer_generation(&wr)), framering_writer_path(&wr));
    std::fflush(stdout);

    framering_frame_info fi{};
    fi.width = static_cast<uint32_t>(w);
    fi.height = static_cast<uint32_t>(h);
    fi.format = FRAMERING_BGR8;
    long long sent = 0, in_place = 0, copied = 0;
    int rc = 0;
    int64_t period = fps > 0 ? static_cast<int64_t>(1e9 / fps) : 0;
    int64_t start = framering_now_ns(), last_t = start;
    long long last_n = 0;
    while (!stop_flag && (count == 0 || sent < count)) {
        if (period > 0) {
            int64_t due = start + sent * period;
            while (!stop_flag && framering_now_ns() < due) {
                struct timespec ts = {static_cast<time_t>(due / 1000000000), static_cast<long>(due % 1000000000)};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
            }
            if (stop_flag) break;
        }
        framering_loan *l = nullptr;
        if (framering_writer_reserve(&wr, &fi, &l) != FRAMERING_OK) {
            std::fprintf(stderr, "%s: %s\n", prog, framering_writer_error(&wr));
            rc = 1;
            break;
        }
        // A Mat header over the slot: it aliases shared memory, owns nothing,
        // and is valid until commit or abort.
        cv::Mat slot(h, w, CV_8UC3, l->pixels, l->stride);
        bool ok = true;
        if (!still.empty()) {
            still.copyTo(slot);
        } else if (!synthetic.empty()) {
            draw_card(slot, l->number);
        } else if (!first.empty()) {
            first.copyTo(slot);
            first.release();
        } else {
            // read() decodes into slot's buffer as long as the frame keeps its
            // size and type; if OpenCV had to reallocate, copy it in.
            ok = cap.read(slot) && !slot.empty();
            if (ok && slot.data != l->pixels) {
                if (slot.cols != w || slot.rows != h || slot.type() != CV_8UC3) {
                    std::fprintf(stderr, "%s: the source changed its frame size to %dx%d; restart the capture\n",
                                 prog, slot.cols, slot.rows);
                    framering_writer_abort(&wr);
                    rc = 1;
                    break;
                }
                slot.copyTo(cv::Mat(h, w, CV_8UC3, l->pixels, l->stride));
                copied++, in_place--;
            }
        }
        if (!ok) { // end of the video
            framering_writer_abort(&wr);
            break;
        }
        in_place++;
        l->capture_ns = framering_now_ns();
        int n = std::snprintf(reinterpret_cast<char *>(l->meta), l->meta_cap, "source=%s",
                              !image.empty() ? "image" : !synthetic.empty() ? "synthetic" : "capture");
        l->meta_len = n > 0 ? std::min(static_cast<uint32_t>(n), l->meta_cap) : 0;
        if (framering_writer_commit(&wr) != FRAMERING_OK) {
            std::fprintf(stderr, "%s: %s\n", prog, framering_writer_error(&wr));
            framering_writer_abort(&wr);
            rc = 1;
            break;
        }
        sent++;
        int64_t now = framering_now_ns();
        if (now - last_t >= 1000000000) {
            if (!quiet)
                std::fprintf(stderr, "capture \"%s\": frame %llu, %.1f fps\n", ring.c_str(),
                             static_cast<unsigned long long>(framering_writer_next(&wr) - 1),
                             static_cast<double>(sent - last_n) * 1e9 / static_cast<double>(now - last_t));
            last_n = sent, last_t = now;
        }
    }
    std::printf("sent %lld frames (in place %lld, copied %lld)\n", sent, in_place, copied);
    int ce = remove_at_exit ? framering_writer_remove(&wr) : framering_writer_close(&wr);
    if (ce != FRAMERING_OK) {
        std::fprintf(stderr, "%s: %s\n", prog, framering_writer_error(&wr));
        rc = 1;
    }
    return rc;
}
