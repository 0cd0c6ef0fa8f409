package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const argsEnv = "FRAMERING_CLI_ARGS"

func TestMain(m *testing.M) {
	// The "cli" helper is this binary re-executed as the framering command:
	// run(args) with the arguments passed in the environment.
	testutil.Helper("cli", func() int {
		var args []string
		if err := json.Unmarshal([]byte(os.Getenv(argsEnv)), &args); err != nil {
			fmt.Fprintf(os.Stderr, "cli helper: bad %s: %v\n", argsEnv, err)
			return 3
		}
		return run(args)
	})
	testutil.Main(m)
}

// hang guards: generous, only there so a broken test cannot hang CI.
const (
	shortWait = 30 * time.Second
	longWait  = 60 * time.Second
)

// start runs framering args as a child process.
func start(t *testing.T, args ...string) *testutil.Child {
	t.Helper()
	return startEnv(t, nil, args...)
}

// startEnv is start with extra environment variables (KEY=VALUE).
func startEnv(t *testing.T, env []string, args ...string) *testutil.Child {
	t.Helper()
	b, _ := json.Marshal(args)
	return testutil.Start(t, "cli", append([]string{argsEnv + "=" + string(b)}, env...)...)
}

// cliCmd returns framering args as a command to start, for tests that
// connect its standard input or output themselves (testutil.Start reads
// stdout line by line). It dies with the test process.
func cliCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(args)
	cmd := exec.Command(exe, "-test.run=^$")
	// FRAMERING_TEST_HELPER is internal/testutil's helper switch.
	cmd.Env = append(os.Environ(), "FRAMERING_TEST_HELPER=cli", argsEnv+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// result is what a finished child did.
type result struct {
	stdout, stderr string
	code           int
}

// finish waits for c and returns its output and exit status.
func finish(t *testing.T, c *testutil.Child, seen ...string) result {
	t.Helper()
	rest, err := c.Wait(longWait)
	res := result{stdout: strings.Join(append(seen, rest...), "\n"), stderr: c.Stderr()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("%v", err)
	}
	return res
}

// cli runs framering args to completion.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	return finish(t, start(t, args...))
}

// ringFiles lists what a test left in dir.
func ringFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/framering -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (rerun with -update if the change is intended)\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

func TestHelpGolden(t *testing.T) {
	for _, cmd := range []string{"send", "recv", "view", "ls", "stat", "rm", "demo"} {
		t.Run(cmd, func(t *testing.T) {
			res := cli(t, cmd, "--help")
			if res.code != 0 {
				t.Fatalf("%s --help: exit %d, stderr:\n%s", cmd, res.code, res.stderr)
			}
			golden(t, "help-"+cmd, res.stdout+"\n")
		})
	}
}

func TestUsageErrorsGolden(t *testing.T) {
	dir := testutil.ShmDir(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"send-no-ring", []string{"send", "--pattern", "8x8x3"}},
		{"send-no-source", []string{"send", "--ring", "a"}},
		{"send-two-sources", []string{"send", "--ring", "a", "--image", "x.png", "--pattern", "8x8x3"}},
		{"send-bad-size", []string{"send", "--ring", "a", "--pattern", "banana"}},
		{"send-bad-channels", []string{"send", "--ring", "a", "--pattern", "8x8x9"}},
		{"send-tiny-pattern", []string{"send", "--ring", "a", "--pattern", "2x2x1"}},
		{"send-bad-format", []string{"send", "--ring", "a", "--pattern", "8x8x3", "--format", "nv12"}},
		{"send-format-mismatch", []string{"send", "--ring", "a", "--pattern", "8x8x3", "--format", "gray8"}},
		{"send-bad-name", []string{"send", "--ring", "a/b", "--pattern", "8x8x3"}},
		{"send-bad-slots", []string{"send", "--ring", "a", "--pattern", "8x8x3", "--slots", "3"}},
		{"send-unknown-flag", []string{"send", "--ring", "a", "--bogus"}},
		{"recv-no-ring", []string{"recv"}},
		{"recv-bad-mode", []string{"recv", "--ring", "a", "--mode", "sideways"}},
		{"view-no-ring", []string{"view"}},
		{"send-fps-nan", []string{"send", "--ring", "a", "--pattern", "8x8x3", "--fps", "NaN"}},
		{"send-fps-inf", []string{"send", "--ring", "a", "--pattern", "8x8x3", "--fps", "+Inf"}},
		{"send-fps-negative", []string{"send", "--ring", "a", "--pattern", "8x8x3", "--fps", "-1"}},
		{"send-bad-perm", []string{"send", "--ring", "a", "--pattern", "8x8x3", "--perm", "0666"}},
		{"send-stdin-no-size", []string{"send", "--ring", "a", "--stdin"}},
		{"send-stdin-bad-size", []string{"send", "--ring", "a", "--stdin", "--size", "8x8x3", "--format", "gray8"}},
		{"send-size-without-stdin", []string{"send", "--ring", "a", "--pattern", "8x8x3", "--size", "8x8x3"}},
		{"send-stdin-and-pattern", []string{"send", "--ring", "a", "--stdin", "--size", "8x8x3", "--pattern", "8x8x3"}},
		{"recv-bad-start", []string{"recv", "--ring", "a", "--start", "middle"}},
		{"demo-slots-3", []string{"demo", "--slots", "3"}},
		{"demo-fps-nan", []string{"demo", "--fps", "NaN"}},
		{"demo-fps-negative", []string{"demo", "--fps", "-5"}},
		{"demo-too-large", []string{"demo", "--size", "131072x131072x4"}},
		{"legacy-mirror-rate-nan", []string{"legacy", "mirror", "--from", "a", "--rate", "NaN"}},
		{"rm-nothing", []string{"rm"}},
		{"rm-bad-name", []string{"rm", "a/b"}},
		{"stat-no-name", []string{"stat"}},
		{"stat-two-names", []string{"stat", "a", "b"}},
		{"ls-extra-arg", []string{"ls", "extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := cli(t, append(tc.args, "--dir", dir)...)
			if res.code != 2 {
				t.Errorf("exit %d, want 2 (usage); stderr:\n%s", res.code, res.stderr)
			}
			if res.stdout != "" { // nothing started (demo: no process)
				t.Errorf("a usage error printed to stdout:\n%s", res.stdout)
			}
			golden(t, "usage-"+tc.name, fmt.Sprintf("exit %d\n%s", res.code, res.stderr))
		})
	}
	if left := ringFiles(t, dir); len(left) != 0 {
		t.Errorf("usage errors left files behind: %v", left)
	}
}

var summaryRE = regexp.MustCompile(`received (\d+) frames, dropped (\d+).*verified (\d+), mismatches (\d+)`)

func parseSummary(t *testing.T, out string) (received, dropped, verified, mismatches int) {
	t.Helper()
	m := summaryRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in recv output:\n%s", out)
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return n(m[1]), n(m[2]), n(m[3]), n(m[4])
}

// TestSendRecvVerify runs send --pattern and recv --verify as two processes.
func TestSendRecvVerify(t *testing.T) {
	for _, tc := range []struct {
		name, size, format, mode, slots string
	}{
		{"bgr-all", "96x64x3", "", "all", "8"},
		{"gray-latest", "33x17x1", "gray8", "latest", "2"},
		{"rgba-all", "40x30x4", "rgba8", "all", "4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, name := testutil.ShmDir(t), testutil.Name(t)
			const count = 150
			recv := start(t, "recv", "--ring", name, "--dir", dir, "--wait", "--verify", "--eof", "--mode", tc.mode, "--timeout", "20s", "-q")
			args := []string{"send", "--ring", name, "--dir", dir, "--pattern", tc.size, "--fps", "300", "--count", strconv.Itoa(count), "--slots", tc.slots, "-q"}
			if tc.format != "" {
				args = append(args, "--format", tc.format)
			}
			send := cli(t, args...)
			if send.code != 0 || !strings.Contains(send.stdout, fmt.Sprintf("sent %d frames", count)) {
				t.Fatalf("send: exit %d, stdout:\n%s\nstderr:\n%s", send.code, send.stdout, send.stderr)
			}
			res := finish(t, recv)
			if res.code != 0 {
				t.Fatalf("recv: exit %d, stdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
			}
			got, dropped, verified, bad := parseSummary(t, res.stdout)
			if got == 0 || verified != got || bad != 0 {
				t.Fatalf("received %d, verified %d, mismatches %d:\n%s", got, verified, bad, res.stdout)
			}
			if got+dropped > count {
				t.Fatalf("received %d + dropped %d > %d published", got, dropped, count)
			}
			if !strings.Contains(res.stderr, "writer is gone") {
				t.Errorf("recv --eof did not report the writer gone:\n%s", res.stderr)
			}
			// send without --remove leaves the ring for readers.
			if _, err := os.Stat(ring.Path(dir, name)); err != nil {
				t.Errorf("ring gone after send without --remove: %v", err)
			}
		})
	}
}

// writeTestImage writes a PNG with four colour quadrants and returns it.
func writeTestImage(t *testing.T, path string, w, h int) *image.NRGBA {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBA{A: 255}
			switch {
			case x < w/2 && y < h/2:
				c.R = 250
			case y < h/2:
				c.G = 250
			case x < w/2:
				c.B = 250
			default:
				c.R, c.G, c.B = byte(x*7), byte(y*5), 100
			}
			img.SetNRGBA(x, y, c)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestVerifyCatchesMismatch(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	png := filepath.Join(t.TempDir(), "in.png")
	writeTestImage(t, png, 32, 16)
	recv := start(t, "recv", "--ring", name, "--dir", dir, "--wait", "--verify", "--count", "3", "--timeout", "20s", "-q")
	send := start(t, "send", "--ring", name, "--dir", dir, "--image", png, "--fps", "50", "-q")
	res := finish(t, recv)
	send.Cmd.Process.Signal(syscall.SIGTERM)
	finish(t, send)
	if res.code != 1 || !strings.Contains(res.stderr, "do not match the test pattern") {
		t.Fatalf("recv --verify on an image: exit %d, want 1 with a mismatch message; stderr:\n%s", res.code, res.stderr)
	}
}

// TestImageSave sends a PNG and saves what arrives: the colours must come
// back exactly (PNG -> BGR8 in the ring -> PNG).
func TestImageSave(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in.png")
	want := writeTestImage(t, in, 31, 17)
	out := filepath.Join(tmp, "out")
	recv := start(t, "recv", "--ring", name, "--dir", dir, "--wait", "--save", out, "--count", "2", "--timeout", "20s", "-q")
	send := start(t, "send", "--ring", name, "--dir", dir, "--image", in, "--fps", "50", "--remove", "-q")
	if res := finish(t, recv); res.code != 0 {
		t.Fatalf("recv: exit %d\n%s", res.code, res.stderr)
	}
	send.Cmd.Process.Signal(syscall.SIGTERM)
	sres := finish(t, send)
	if sres.code != 0 {
		t.Fatalf("send after SIGTERM: exit %d\n%s", sres.code, sres.stderr)
	}
	if _, err := os.Stat(ring.Path(dir, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("send --remove left the ring after SIGTERM (stat: %v)", err)
	}
	files, _ := filepath.Glob(filepath.Join(out, name+"-*.png"))
	if len(files) != 2 {
		t.Fatalf("saved %d files, want 2: %v", len(files), files)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bounds() != want.Bounds() {
		t.Fatalf("saved %v, sent %v", got.Bounds(), want.Bounds())
	}
	for y := 0; y < 17; y++ {
		for x := 0; x < 31; x++ {
			g := color.NRGBAModel.Convert(got.At(x, y)).(color.NRGBA)
			if w := want.NRGBAAt(x, y); g != w {
				t.Fatalf("pixel (%d,%d) = %v, sent %v", x, y, g, w)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := testutil.ShmDir(t)
	tmp := t.TempDir()
	corrupt := filepath.Join(tmp, "corrupt.png")
	os.WriteFile(corrupt, []byte("\x89PNG\r\n\x1a\nthis is not really a png"), 0o644)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := busy.Addr().String()
	cameraWant := "-tags gocv"
	if haveGocv {
		cameraWant = "camera 99"
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing-image", []string{"send", "--ring", "img", "--image", filepath.Join(tmp, "nope.png")}, []string{"nope.png", "no such file"}},
		{"corrupt-image", []string{"send", "--ring", "img", "--image", corrupt}, []string{"cannot decode", "PNG or JPEG"}},
		{"camera-absent", []string{"send", "--ring", "cam", "--camera", "99"}, []string{cameraWant}},
		{"video-nogocv-or-missing", []string{"send", "--ring", "vid", "--video", filepath.Join(tmp, "nope.mp4")}, []string{"video"}},
		{"recv-missing-ring", []string{"recv", "--ring", "nothere"}, []string{"does not exist", "--wait"}},
		{"recv-wait-timeout", []string{"recv", "--ring", "nothere", "--wait", "--timeout", "300ms"}, []string{"did not appear within 300ms"}},
		{"stat-missing-ring", []string{"stat", "nothere"}, []string{"does not exist"}},
		{"view-port-in-use", []string{"view", "--ring", "v", "--http", taken}, []string{"address already in use", "--http"}},
		{"send-metrics-port-in-use", []string{"send", "--ring", "m", "--pattern", "8x8x3", "--metrics", taken}, []string{"address already in use"}},
		{"recv-metrics-port-in-use", []string{"recv", "--ring", "m", "--metrics", taken}, []string{"address already in use"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := cli(t, append(tc.args, "--dir", dir)...)
			if res.code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", res.code, res.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, res.stderr)
				}
			}
			if left := ringFiles(t, dir); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestRecvWaits starts recv --wait before the ring exists.
func TestRecvWaits(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	recv := start(t, "recv", "--ring", name, "--dir", dir, "--wait", "--verify", "--count", "5", "--timeout", "30s", "-q")
	// Let it start waiting first (if it gave up instead, it exits 1 below).
	time.Sleep(300 * time.Millisecond)
	send := start(t, "send", "--ring", name, "--dir", dir, "--pattern", "64x8x1", "--fps", "100", "-q")
	res := finish(t, recv)
	send.Cmd.Process.Signal(syscall.SIGTERM)
	finish(t, send)
	if res.code != 0 {
		t.Fatalf("recv: exit %d\n%s", res.code, res.stderr)
	}
	if got, _, verified, _ := parseSummary(t, res.stdout); got != 5 || verified != 5 {
		t.Fatalf("received %d, verified %d, want 5:\n%s", got, verified, res.stdout)
	}
}

func TestLsStat(t *testing.T) {
	dir := testutil.ShmDir(t)
	done, live := testutil.Name(t)+"-done", testutil.Name(t)+"-live"
	if res := cli(t, "send", "--ring", done, "--dir", dir, "--pattern", "20x10x3", "--count", "5", "--fps", "0", "-q"); res.code != 0 {
		t.Fatalf("send: %d\n%s", res.code, res.stderr)
	}
	send := start(t, "send", "--ring", live, "--dir", dir, "--pattern", "16x16x1", "--fps", "200", "-q")
	if _, err := send.Expect("ring ", shortWait); err != nil {
		t.Fatal(err)
	}
	bad := testutil.Name(t) + "-bad"
	if err := os.WriteFile(ring.Path(dir, bad), []byte("not a ring"), 0o600); err != nil {
		t.Fatal(err)
	}
	ls := cli(t, "ls", "--dir", dir)
	if ls.code != 0 {
		t.Fatalf("ls: exit %d\n%s", ls.code, ls.stderr)
	}
	if !strings.Contains(ls.stderr, bad) || !strings.Contains(ls.stderr, "truncated") {
		t.Errorf("ls did not explain the unreadable ring %s:\n%s", bad, ls.stderr)
	}
	lines := strings.Split(ls.stdout, "\n")
	row := func(name string) []string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				return f
			}
		}
		t.Fatalf("ls has no row for %s:\n%s", name, ls.stdout)
		return nil
	}
	// NAME GEOMETRY FRAME(2 fields) WRITER STATE FRAMES RATE NEWEST...
	if b := row(bad); b[4] != "unreadable" {
		t.Errorf("ls row of a corrupt file: %v", b)
	}
	d := row(done)
	if d[1] != "8x600B" || d[2] != "20x10x3" || d[3] != "bgr8" || d[5] != "gone" || d[6] != "5" {
		t.Errorf("ls row of the finished ring: %v", d)
	}
	l := row(live)
	if l[2] != "16x16x1" || l[5] != "alive" || l[4] != strconv.Itoa(send.Cmd.Process.Pid) {
		t.Errorf("ls row of the live ring: %v (writer pid %d)", l, send.Cmd.Process.Pid)
	}
	// The live ring's rate depends on how much of ls's sample the loaded
	// machine gave the writer: only its form is asserted; the finished
	// ring's must be exactly 0.
	if rate, err := strconv.ParseFloat(strings.TrimSuffix(l[7], "/s"), 64); err != nil || rate < 0 {
		t.Errorf("live ring rate %q, want a rate", l[7])
	}
	if d[7] != "0.0/s" {
		t.Errorf("finished ring rate %q, want 0.0/s", d[7])
	}

	st := cli(t, "stat", "--dir", dir, done)
	if st.code != 0 {
		t.Fatalf("stat: exit %d\n%s", st.code, st.stderr)
	}
	for _, want := range []string{"slot count         8", "head               5", "frames total       5", "generation         1", "(gone)"} {
		if !strings.Contains(st.stdout, want) {
			t.Errorf("stat lacks %q:\n%s", want, st.stdout)
		}
	}
	slots := 0
	for _, line := range strings.Split(st.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[2] == "even" {
			slots++
			if n, _ := strconv.Atoi(f[3]); n < 1 || n > 5 {
				t.Errorf("slot row with frame %q: %s", f[3], line)
			}
		}
	}
	if slots != 5 {
		t.Errorf("stat shows %d slots with frames, want 5:\n%s", slots, st.stdout)
	}
	send.Cmd.Process.Signal(syscall.SIGTERM)
	if res := finish(t, send); res.code != 0 {
		t.Errorf("send after SIGTERM: exit %d\n%s", res.code, res.stderr)
	}
}
