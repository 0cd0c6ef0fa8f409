#!/bin/sh
# End-to-end run of the OpenCV examples; `make test-c` runs it when
# pkg-config finds opencv4. Usage: cv_test.sh BUILD_DIR
set -eu
B=$1
D=$(mktemp -d /dev/shm/framering-cvtest-XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL cv_test: $*" >&2; exit 1; }

# 1. A test card drawn straight into loaned slots; a reader wraps views in
#    cv::Mat, computes means and saves one frame as a PNG.
"$B/framering-cv-view" --ring card --dir "$D" --wait --timeout 20 --count 5 --save "$D/card.png" >"$D/1.out" 2>&1 &
V=$!
"$B/framering-cv-capture" --ring card --dir "$D" --synthetic 160x120 --count 300 --fps 100 -q >"$D/1c.out"
wait $V || fail "viewing the test card: $(cat "$D/1.out")"
grep -q "sent 300 frames (in place 300, copied 0)" "$D/1c.out" || fail "capture: $(cat "$D/1c.out")"
grep -q "^viewed 5 frames" "$D/1.out" || fail "view: $(cat "$D/1.out")"
[ -s "$D/card.png" ] || fail "no PNG written"

# 2. That PNG, read with cv::imread and copied into loaned slots: every
#    frame viewed equals the file, pixel for pixel.
"$B/framering-cv-view" --ring still --dir "$D" --wait --timeout 20 --count 5 --expect "$D/card.png" >"$D/2.out" 2>&1 &
V=$!
"$B/framering-cv-capture" --ring still --dir "$D" --image "$D/card.png" --count 300 --fps 100 -q >/dev/null
wait $V || fail "expect: $(cat "$D/2.out")"
grep -q "5 match" "$D/2.out" || fail "expect: $(cat "$D/2.out")"

# 3. ... and a frame that differs from the file is noticed (exit 1).
"$B/framering-cv-view" --ring card2 --dir "$D" --wait --timeout 20 --count 3 --expect "$D/card.png" >"$D/3.out" 2>&1 &
V=$!
"$B/framering-cv-capture" --ring card2 --dir "$D" --synthetic 160x120 --count 300 --fps 100 -q >/dev/null
if wait $V; then fail "a differing frame passed --expect: $(cat "$D/3.out")"; fi
grep -q "DIFFERS" "$D/3.out" || fail "no DIFFERS line: $(cat "$D/3.out")"

# 4. A video decoded by cv::VideoCapture::read straight into the slots.
if command -v ffmpeg >/dev/null 2>&1; then
	ffmpeg -loglevel error -f lavfi -i testsrc=size=160x120:rate=30 -frames:v 60 -c:v mjpeg "$D/clip.avi"
	"$B/framering-cv-capture" --ring clip --dir "$D" --video "$D/clip.avi" --fps 0 -q >"$D/4.out" ||
		fail "video: $(cat "$D/4.out")"
	grep -q "sent 60 frames (in place 60, copied 0)" "$D/4.out" || fail "video: $(cat "$D/4.out")"
else
	echo "cv_test: skipping the video case: ffmpeg not found (apt-get install ffmpeg)"
fi
echo "ok   cv_test (OpenCV capture into loaned slots, views as cv::Mat)"
