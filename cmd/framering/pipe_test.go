package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
)

// rawFrames returns n frames of size bytes that differ in every frame and
// byte.
func rawFrames(n, size int) []byte {
	b := make([]byte, n*size)
	for i := range b {
		b[i] = byte(i/size*37 + i*11 + i>>9)
	}
	return b
}

// runPiped runs framering args with stdin from in (nil: /dev/null) and
// returns stdout, stderr and the exit status.
func runPiped(t *testing.T, in io.Reader, args ...string) (stdout []byte, stderr string, code int) {
	t.Helper()
	cmd := cliCmd(t, args...)
	cmd.Stdin = in
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(longWait): // hang guard
		cmd.Process.Kill()
		<-done
		t.Fatalf("framering %v still running after %v; stderr:\n%s", args, longWait, e.String())
	}
	return o.Bytes(), e.String(), code
}

// summaryKV parses the `summary key=value ...` line of recv.
func summaryKV(t *testing.T, out string) map[string]int64 {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(l, "summary ")
		if !ok {
			continue
		}
		kv := map[string]int64{}
		for _, f := range strings.Fields(rest) {
			k, v, ok := strings.Cut(f, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if !ok || err != nil {
				t.Fatalf("summary field %q is not key=integer: %s", f, l)
			}
			kv[k] = n
		}
		return kv
	}
	t.Fatalf("no summary line in:\n%s", out)
	return nil
}

// TestStdinStdoutRoundTrip sends raw frames through send --stdin and reads
// them back with recv --stdout: the bytes must come back exactly, and
// nothing else may be on recv's stdout.
func TestStdinStdoutRoundTrip(t *testing.T) {
	for _, tc := range []struct{ size, format string }{
		{"33x17x3", "bgr8"}, {"16x9x1", "gray16"}, {"10x4x2", "yuyv"}, {"7x5x3", "raw"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			dir, name := testutil.ShmDir(t), testutil.Name(t)
			fi, err := sourceShape(tc.size, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			const n = 12
			in := rawFrames(n, fi)
			out, stderr, code := runPiped(t, bytes.NewReader(in), "send", "--ring", name, "--dir", dir, "--stdin",
				"--size", tc.size, "--format", tc.format, "--slots", "16", "-q")
			if code != 0 || !strings.Contains(string(out), fmt.Sprintf("sent %d frames", n)) {
				t.Fatalf("send --stdin: exit %d\n%s\n%s", code, out, stderr)
			}
			got, stderr, code := runPiped(t, nil, "recv", "--ring", name, "--dir", dir, "--start", "oldest", "--count", strconv.Itoa(n), "--stdout", "-q")
			if code != 0 {
				t.Fatalf("recv --stdout: exit %d\n%s", code, stderr)
			}
			if !bytes.Equal(got, in) {
				t.Fatalf("recv --stdout wrote %d bytes, not the %d sent (first difference at %d)", len(got), len(in), firstDiff(got, in))
			}
			kv := summaryKV(t, stderr)
			if kv["delivered"] != n || kv["window_start"] != 1 || kv["last"] != n || kv["dropped"] != 0 {
				t.Errorf("summary on stderr: %v", kv)
			}
		})
	}
}

// sourceShape is the frame size in bytes of size and format.
func sourceShape(size, format string) (int, error) {
	var w, h, c int
	if _, err := fmt.Sscanf(size, "%dx%dx%d", &w, &h, &c); err != nil {
		return 0, err
	}
	if format == "gray16" {
		return w * h * 2, nil
	}
	return w * h * c, nil
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestStdinEnds: an empty input is a clean end; an input that ends inside
// a frame publishes the whole frames before it and exits 1 naming the
// bytes it got and wanted.
func TestStdinEnds(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	out, stderr, code := runPiped(t, bytes.NewReader(nil), "send", "--ring", name, "--dir", dir, "--stdin", "--size", "8x4x3", "-q")
	if code != 0 || !strings.Contains(string(out), "sent 0 frames") {
		t.Errorf("empty input: exit %d\n%s\n%s", code, out, stderr)
	}
	in := rawFrames(3, 96)[:2*96+40]
	out, stderr, code = runPiped(t, bytes.NewReader(in), "send", "--ring", name, "--dir", dir, "--stdin", "--size", "8x4x3", "-q")
	if code != 1 || !strings.Contains(string(out), "sent 2 frames") {
		t.Fatalf("partial frame: exit %d, want 1 after 2 frames\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"standard input", "frame 3 has 40 of 96 bytes", "--size and --format"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("partial frame: stderr lacks %q:\n%s", want, stderr)
		}
	}
	got, stderr, code := runPiped(t, nil, "recv", "--ring", name, "--dir", dir, "--start", "oldest", "--count", "2", "--stdout", "-q")
	if code != 0 || !bytes.Equal(got, in[:2*96]) {
		t.Errorf("the 2 whole frames did not come back: exit %d, %d bytes\n%s", code, len(got), stderr)
	}
}

// TestRecvStdoutShapeChange: raw output cannot change shape mid-stream;
// recv stops with an error instead of writing frames of another size.
func TestRecvStdoutShapeChange(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	if res := cli(t, "send", "--ring", name, "--dir", dir, "--pattern", "8x4x3", "--count", "3", "--fps", "0", "-q"); res.code != 0 {
		t.Fatalf("send: %v", res)
	}
	recv := cliCmd(t, "recv", "--ring", name, "--dir", dir, "--start", "oldest", "--stdout", "-q", "--timeout", "30s")
	var stderr bytes.Buffer
	recv.Stderr = &stderr
	out, err := recv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	defer recv.Process.Kill()
	// Frames 1..3 of 96 bytes first (a hang guard ends a stuck read).
	guard := time.AfterFunc(longWait, func() { recv.Process.Kill() })
	defer guard.Stop()
	first := make([]byte, 3*96)
	if _, err := io.ReadFull(out, first); err != nil {
		t.Fatalf("the first 3 frames: %v\n%s", err, stderr.String())
	}
	// Then a writer with larger frames replaces the ring.
	if res := cli(t, "send", "--ring", name, "--dir", dir, "--pattern", "16x8x3", "--count", "3", "--fps", "0", "-q"); res.code != 0 {
		t.Fatalf("send: %v", res)
	}
	rest, _ := io.ReadAll(out)
	err = recv.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "raw output cannot change shape") {
		t.Fatalf("recv --stdout across a shape change: %v\n%s", err, stderr.String())
	}
	if len(rest) != 0 {
		t.Errorf("recv wrote %d bytes of the larger frames", len(rest))
	}
}

// ffmpegFrames makes n frames of ffmpeg's testsrc in pix_fmt into a file.
func ffmpegFrames(t *testing.T, ffmpeg, path, size, pixFmt string, n int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), longWait) // hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", "testsrc=size="+size+":rate=25", "-frames:v", strconv.Itoa(n), "-pix_fmt", pixFmt, "-f", "rawvideo", "-y", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFFmpegRoundTrip connects ffmpeg and framering with pipes alone:
// ffmpeg's testsrc -> send --stdin -> ring -> recv --stdout -> ffmpeg, and
// compares what comes out pixel for pixel with what ffmpeg made. It needs
// Debian's ffmpeg (apt-get install ffmpeg).
func TestFFmpegRoundTrip(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg is not installed (apt-get install ffmpeg): the pipe round trip was not checked")
	}
	const n = 30
	for _, tc := range []struct{ size, pixFmt, ours, channels string }{
		{"320x240", "bgr24", "bgr8", "3"},
		{"160x120", "gray", "gray8", "1"},
		{"128x96", "yuyv422", "yuyv", "2"},
		{"64x48", "rgba", "rgba8", "4"},
	} {
		t.Run(tc.pixFmt, func(t *testing.T) {
			dir, name := testutil.ShmDir(t), testutil.Name(t)
			tmp := t.TempDir()
			want := ffmpegFrames(t, ffmpeg, filepath.Join(tmp, "want.raw"), tc.size, tc.pixFmt, n)
			size := tc.size + "x" + tc.channels

			// recv first, waiting for the ring, its output through ffmpeg into a file.
			back := filepath.Join(tmp, "back.raw")
			ctx, cancel := context.WithTimeout(context.Background(), longWait) // hang guard
			defer cancel()
			recv := cliCmd(t, "recv", "--ring", name, "--dir", dir, "--wait", "--start", "oldest", "--count", strconv.Itoa(n), "--stdout", "-q")
			sink := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", tc.pixFmt,
				"-s", tc.size, "-i", "-", "-f", "rawvideo", "-pix_fmt", tc.pixFmt, "-y", back)
			var recvErr, sinkErr bytes.Buffer
			recv.Stderr, sink.Stderr = &recvErr, &sinkErr
			pipe, err := recv.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			sink.Stdin = pipe
			// ffmpeg testsrc straight into send --stdin.
			src := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
				"-i", "testsrc=size="+tc.size+":rate=25", "-frames:v", strconv.Itoa(n), "-pix_fmt", tc.pixFmt, "-f", "rawvideo", "-")
			send := cliCmd(t, "send", "--ring", name, "--dir", dir, "--stdin", "--size", size, "--format", tc.ours, "--slots", "32", "-q")
			var srcErr, sendOut, sendErr bytes.Buffer
			src.Stderr, send.Stdout, send.Stderr = &srcErr, &sendOut, &sendErr
			feed, err := src.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			send.Stdin = feed

			began := time.Now()
			for _, c := range []*exec.Cmd{recv, sink, send, src} {
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range []struct {
				cmd    *exec.Cmd
				what   string
				stderr *bytes.Buffer
			}{{src, "ffmpeg testsrc", &srcErr}, {send, "send --stdin", &sendErr}, {recv, "recv --stdout", &recvErr}, {sink, "ffmpeg rawvideo", &sinkErr}} {
				if err := c.cmd.Wait(); err != nil {
					t.Fatalf("%s: %v\n%s", c.what, err, c.stderr.String())
				}
			}
			took := time.Since(began)
			got, err := os.ReadFile(back)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sendOut.String(), fmt.Sprintf("sent %d frames", n)) {
				t.Errorf("send: %s", sendOut.String())
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%d bytes came back through the ring, ffmpeg made %d; first difference at byte %d", len(got), len(want), firstDiff(got, want))
			}
			kv := summaryKV(t, recvErr.String())
			if kv["delivered"] != n || kv["dropped"] != 0 || kv["window_start"] != 1 || kv["last"] != n {
				t.Errorf("recv summary %v, want %d frames delivered from 1 to %d", kv, n, n)
			}
			t.Logf("%s %s: %d frames, %d bytes, pixel-exact through ffmpeg | send --stdin | ring | recv --stdout | ffmpeg in %v",
				tc.size, tc.pixFmt, n, len(got), took.Round(time.Millisecond))
		})
	}
}

// TestSendStdinSignal: SIGTERM stops send --stdin while it waits for
// input between frames (the pipe stays open), cleanly: the frames before
// are published, exit 0.
func TestSendStdinSignal(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	send := cliCmd(t, "send", "--ring", name, "--dir", dir, "--stdin", "--size", "8x4x1", "-q")
	in, err := send.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := send.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	send.Stderr = &stderr
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	defer send.Process.Kill()
	guard := time.AfterFunc(longWait, func() { send.Process.Kill() }) // hang guard
	defer guard.Stop()
	buf := make([]byte, 4096)
	n, err := out.Read(buf) // "ring ...": the ring exists
	if err != nil || !strings.HasPrefix(string(buf[:n]), "ring ") {
		t.Fatalf("send --stdin: %q, %v\n%s", buf[:n], err, stderr.String())
	}
	in.Write(rawFrames(2, 32))
	testutil.Eventually(t, "2 frames published", func() bool {
		res := cli(t, "stat", "--dir", dir, "--json", name)
		return strings.Contains(res.stdout, `"frames_total": 2,`)
	})
	send.Process.Signal(syscall.SIGTERM)
	rest, _ := io.ReadAll(out)
	if err := send.Wait(); err != nil || !strings.Contains(string(rest), "sent 2 frames") {
		t.Fatalf("send --stdin after SIGTERM: %v\n%s\n%s", err, rest, stderr.String())
	}
}

// TestRecvStdoutClosed: when the program reading recv's output exits, recv
// stops cleanly at the broken pipe, with the summary on stderr.
func TestRecvStdoutClosed(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	// Frames larger than a pipe's buffer, so that recv blocks writing one.
	if res := cli(t, "send", "--ring", name, "--dir", dir, "--pattern", "320x240x3", "--count", "8", "--fps", "0", "-q"); res.code != 0 {
		t.Fatalf("send: %d\n%s", res.code, res.stderr)
	}
	recv := cliCmd(t, "recv", "--ring", name, "--dir", dir, "--start", "oldest", "--stdout", "--verify", "-q")
	out, err := recv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	recv.Stderr = &stderr
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	defer recv.Process.Kill()
	guard := time.AfterFunc(longWait, func() { recv.Process.Kill() }) // hang guard
	defer guard.Stop()
	if _, err := io.ReadFull(out, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	out.Close() // the reader of the pipe goes away
	if err := recv.Wait(); err != nil {
		t.Fatalf("recv --stdout after its reader exited: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "standard output was closed") {
		t.Errorf("recv did not say why it stopped:\n%s", stderr.String())
	}
	if kv := summaryKV(t, stderr.String()); kv["delivered"] < 1 || kv["delivered"] > 8 || kv["mismatches"] != 0 {
		t.Errorf("summary: %v", kv)
	}
}
