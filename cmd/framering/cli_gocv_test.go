//go:build gocv

package main

import (
	"strings"
	"testing"

	"github.com/framering/framering/internal/testutil"
	"gocv.io/x/gocv"
)

// TestSendVideo publishes a video file decoded by OpenCV straight into the
// ring's slots and reads every frame back.
func TestSendVideo(t *testing.T) {
	const n, rows, cols = 6, 40, 56
	path := t.TempDir() + "/clip.avi"
	vw, err := gocv.VideoWriterFile(path, "MJPG", 25, cols, rows, true)
	if err != nil || !vw.IsOpened() {
		t.Skipf("OpenCV cannot write an MJPG AVI here (%v)", err)
	}
	for i := 0; i < n; i++ {
		m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(40*i), 80, 160, 0), rows, cols, gocv.MatTypeCV8UC3)
		vw.Write(m)
		m.Close()
	}
	vw.Close()

	dir, name := testutil.ShmDir(t), testutil.Name(t)
	// --start oldest: recv gets frames 1..3 however late it opens (the 8 slots
	// hold all 6).
	recv := start(t, "recv", "--ring", name, "--dir", dir, "--wait", "--start", "oldest", "--eof", "--count", "3", "--timeout", "20s", "-q")
	send := cli(t, "send", "--ring", name, "--dir", dir, "--video", path, "--fps", "20", "-q")
	if send.code != 0 || !strings.Contains(send.stdout, "sent 6 frames") || !strings.Contains(send.stdout, "56x40x3 bgr8") {
		t.Fatalf("send --video: exit %d\n%s\n%s", send.code, send.stdout, send.stderr)
	}
	res := finish(t, recv)
	if res.code != 0 || !strings.Contains(res.stdout, "received 3 frames") {
		t.Fatalf("recv: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if kv := summaryKV(t, res.stdout); kv["window_start"] != 1 || kv["last"] != 3 || kv["dropped"] != 0 {
		t.Errorf("recv: %v, want frames 1 to 3", kv)
	}
}
