package ring_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

var update = flag.Bool("update", false, "rewrite testdata/superblock.golden")

// TestLayoutOffsets checks every named field of the superblock and the slot
// header against the offsets docs/PROTOCOL.md documents.
func TestLayoutOffsets(t *testing.T) {
	var sb ring.Superblock
	var sh ring.SlotHeader
	for _, c := range []struct {
		name       string
		got        uintptr
		off, size  uintptr
		gotSize    uintptr
		mustAlign8 bool
	}{
		{"Superblock.Magic", unsafe.Offsetof(sb.Magic), 0, 8, unsafe.Sizeof(sb.Magic), false},
		{"Superblock.Version", unsafe.Offsetof(sb.Version), 8, 4, unsafe.Sizeof(sb.Version), false},
		{"Superblock.SuperSize", unsafe.Offsetof(sb.SuperSize), 12, 4, unsafe.Sizeof(sb.SuperSize), false},
		{"Superblock.SlotCount", unsafe.Offsetof(sb.SlotCount), 16, 4, unsafe.Sizeof(sb.SlotCount), false},
		{"Superblock.MetaCap", unsafe.Offsetof(sb.MetaCap), 20, 4, unsafe.Sizeof(sb.MetaCap), false},
		{"Superblock.SlotStride", unsafe.Offsetof(sb.SlotStride), 24, 8, unsafe.Sizeof(sb.SlotStride), false},
		{"Superblock.PayloadOffset", unsafe.Offsetof(sb.PayloadOffset), 32, 8, unsafe.Sizeof(sb.PayloadOffset), false},
		{"Superblock.PayloadCap", unsafe.Offsetof(sb.PayloadCap), 40, 8, unsafe.Sizeof(sb.PayloadCap), false},
		{"Superblock.FileSize", unsafe.Offsetof(sb.FileSize), 48, 8, unsafe.Sizeof(sb.FileSize), false},
		{"Superblock.Flags", unsafe.Offsetof(sb.Flags), 56, 4, unsafe.Sizeof(sb.Flags), false},
		{"Superblock.Checksum", unsafe.Offsetof(sb.Checksum), 60, 4, unsafe.Sizeof(sb.Checksum), false},
		{"Superblock.WriterPID", unsafe.Offsetof(sb.WriterPID), 64, 4, unsafe.Sizeof(sb.WriterPID), false},
		{"Superblock.WriterStart", unsafe.Offsetof(sb.WriterStart), 72, 8, unsafe.Sizeof(sb.WriterStart), true},
		{"Superblock.Generation", unsafe.Offsetof(sb.Generation), 80, 8, unsafe.Sizeof(sb.Generation), true},
		{"Superblock.Created", unsafe.Offsetof(sb.Created), 88, 8, unsafe.Sizeof(sb.Created), true},
		{"Superblock.Heartbeat", unsafe.Offsetof(sb.Heartbeat), 128, 8, unsafe.Sizeof(sb.Heartbeat), true},
		{"Superblock.Head", unsafe.Offsetof(sb.Head), 192, 8, unsafe.Sizeof(sb.Head), true},
		{"Superblock.Notify", unsafe.Offsetof(sb.Notify), 200, 4, unsafe.Sizeof(sb.Notify), false},
		{"Superblock.FramesTotal", unsafe.Offsetof(sb.FramesTotal), 256, 8, unsafe.Sizeof(sb.FramesTotal), true},
		{"Superblock.BytesTotal", unsafe.Offsetof(sb.BytesTotal), 264, 8, unsafe.Sizeof(sb.BytesTotal), true},
		{"SlotHeader.Seq", unsafe.Offsetof(sh.Seq), 0, 8, unsafe.Sizeof(sh.Seq), true},
		{"SlotHeader.FrameNo", unsafe.Offsetof(sh.FrameNo), 8, 8, unsafe.Sizeof(sh.FrameNo), true},
		{"SlotHeader.Generation", unsafe.Offsetof(sh.Generation), 16, 8, unsafe.Sizeof(sh.Generation), false},
		{"SlotHeader.Width", unsafe.Offsetof(sh.Width), 24, 4, unsafe.Sizeof(sh.Width), false},
		{"SlotHeader.Height", unsafe.Offsetof(sh.Height), 28, 4, unsafe.Sizeof(sh.Height), false},
		{"SlotHeader.Channels", unsafe.Offsetof(sh.Channels), 32, 4, unsafe.Sizeof(sh.Channels), false},
		{"SlotHeader.Format", unsafe.Offsetof(sh.Format), 36, 4, unsafe.Sizeof(sh.Format), false},
		{"SlotHeader.Stride", unsafe.Offsetof(sh.Stride), 40, 4, unsafe.Sizeof(sh.Stride), false},
		{"SlotHeader.MetaLen", unsafe.Offsetof(sh.MetaLen), 44, 4, unsafe.Sizeof(sh.MetaLen), false},
		{"SlotHeader.PayloadLen", unsafe.Offsetof(sh.PayloadLen), 48, 8, unsafe.Sizeof(sh.PayloadLen), false},
		{"SlotHeader.CaptureNs", unsafe.Offsetof(sh.CaptureNs), 64, 8, unsafe.Sizeof(sh.CaptureNs), false},
		{"SlotHeader.PublishNs", unsafe.Offsetof(sh.PublishNs), 56, 8, unsafe.Sizeof(sh.PublishNs), false},
		{"SlotHeader.WallNs", unsafe.Offsetof(sh.WallNs), 72, 8, unsafe.Sizeof(sh.WallNs), false},
	} {
		if c.got != c.off || c.gotSize != c.size {
			t.Errorf("%s at offset %d size %d; PROTOCOL.md says offset %d size %d", c.name, c.got, c.gotSize, c.off, c.size)
		}
		if c.mustAlign8 && c.got%8 != 0 {
			t.Errorf("%s at offset %d is not 8-byte aligned; atomics need it", c.name, c.got)
		}
	}
	// The words a commit writes: Head and Notify share one 64-byte line
	// (readers waiting load both), the totals another, and neither line
	// holds anything else that is written while the ring is live.
	line := func(off uintptr) uintptr { return off / 64 }
	if line(unsafe.Offsetof(sb.Head)) != line(unsafe.Offsetof(sb.Notify)) {
		t.Errorf("Head and Notify are on different cache lines")
	}
	if line(unsafe.Offsetof(sb.FramesTotal)) != line(unsafe.Offsetof(sb.BytesTotal)) {
		t.Errorf("FramesTotal and BytesTotal are on different cache lines")
	}
	hot := map[string]uintptr{"Heartbeat": unsafe.Offsetof(sb.Heartbeat), "Head": unsafe.Offsetof(sb.Head), "FramesTotal": unsafe.Offsetof(sb.FramesTotal)}
	for a, oa := range hot {
		for b, ob := range hot {
			if a < b && line(oa) == line(ob) {
				t.Errorf("%s shares cache line %d with %s", a, line(oa), b)
			}
		}
		if line(oa) <= line(unsafe.Offsetof(sb.Created)) {
			t.Errorf("%s shares a cache line with the per-open words", a)
		}
	}
	// A reader's first touch of a slot, one line: seq and every field
	// needed to pick the frame up and time it.
	for name, end := range map[string]uintptr{
		"PayloadLen": unsafe.Offsetof(sh.PayloadLen) + 8, "PublishNs": unsafe.Offsetof(sh.PublishNs) + 8,
	} {
		if end > 64 {
			t.Errorf("SlotHeader.%s ends at %d, past the seq word's line", name, end)
		}
	}
	if got := unsafe.Sizeof(sb); got != ring.SuperblockSize {
		t.Errorf("Superblock is %d bytes, want %d", got, ring.SuperblockSize)
	}
	if got := unsafe.Sizeof(sh); got != ring.SlotHeaderSize {
		t.Errorf("SlotHeader is %d bytes, want %d", got, ring.SlotHeaderSize)
	}
}

// TestGeometryTable checks the geometry examples of PROTOCOL.md section 4.
func TestGeometryTable(t *testing.T) {
	for _, c := range []struct {
		g                    ring.Geometry
		payOff, stride, size int64
	}{
		{ring.Geometry{Slots: 8, PayloadCap: 1920 * 1080 * 3, MetaCap: 4096}, 8192, 6230016, 49844224},
		{ring.Geometry{Slots: 4, PayloadCap: 1000, MetaCap: 256}, 4096, 8192, 36864},
		{ring.Geometry{Slots: 8, PayloadCap: 640 * 480 * 3, MetaCap: 0}, 4096, 925696, 7409664},
	} {
		if c.g.PayloadOffset() != c.payOff || c.g.SlotStride() != c.stride || c.g.FileSize() != c.size {
			t.Errorf("%v: offset %d stride %d size %d; PROTOCOL.md says %d %d %d", c.g,
				c.g.PayloadOffset(), c.g.SlotStride(), c.g.FileSize(), c.payOff, c.stride, c.size)
		}
	}
}

// goldenGeometry and goldenCreated are the fixed inputs of the golden file.
var (
	goldenGeometry = ring.Geometry{Slots: 4, PayloadCap: 1000, MetaCap: 256}
	goldenCreated  = int64(1700000000123456789)
)

// goldenText formats a ring on a zeroed buffer and dumps (1) the fresh
// superblock and first slot header, and (2) the superblock and slot header
// after a writer opened it and committed frame 1, with fixed values.
func goldenText(t *testing.T) string {
	g := goldenGeometry
	mem := make([]byte, g.FileSize())
	seg, err := ring.Format(mem, g, goldenCreated)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "# framering segment format v%d, golden dump (hexdump -C style, '*' = repeated line)\n", ring.Version)
	fmt.Fprintf(&out, "# geometry: %v, created %d\n", g, goldenCreated)
	fmt.Fprintf(&out, "# payload offset %d, slot stride %d, file size %d\n", g.PayloadOffset(), g.SlotStride(), g.FileSize())
	fmt.Fprintf(&out, "\n## 1. fresh: superblock (0..4095) and slot 0 header (4096..%d)\n", ring.SuperblockSize+ring.SlotHeaderSize-1)
	hexdump(&out, mem[:ring.SuperblockSize+ring.SlotHeaderSize], 0)

	// A writer opened the ring and committed frame 1 (slot 1).
	seg.Generation().Store(1)
	seg.WriterPID().Store(4242)
	seg.WriterStart().Store(1700000001000000000)
	seg.Heartbeat().Store(5000000000)
	h := seg.Slot(1)
	fi := ring.FrameInfo{Width: 8, Height: 4, Format: ring.BGR8, Stride: 32, Capture: 4000000000, Meta: []byte("hello")}
	if _, err := fi.Normalize(g.PayloadCap, g.MetaCap); err != nil {
		t.Fatal(err)
	}
	h.SeqWord().Store(1)
	copy(seg.Meta(1), fi.Meta)
	h.Store(1, 1, &fi, 4500000000, 1700000002000000000)
	h.SeqWord().Store(2)
	seg.Head().Store(1)
	seg.FramesTotal().Store(1)
	seg.BytesTotal().Store(uint64(fi.Len))
	seg.Notify().Store(2)
	slot1 := ring.SuperblockSize + g.SlotStride()
	fmt.Fprintf(&out, "\n## 2. after writer pid 4242 (generation 1) committed frame 1: 8x4 bgr8, stride 32, metadata \"hello\"\n")
	fmt.Fprintf(&out, "## superblock (0..4095)\n")
	hexdump(&out, mem[:ring.SuperblockSize], 0)
	fmt.Fprintf(&out, "## slot 1 header and metadata start (%d..%d)\n", slot1, slot1+ring.SlotHeaderSize+16-1)
	hexdump(&out, mem[slot1:slot1+ring.SlotHeaderSize+16], slot1)
	return out.String()
}

// hexdump writes b like hexdump -C, with absolute offsets from base and
// '*' for lines equal to the previous one.
func hexdump(w io.Writer, b []byte, base int64) {
	var prev []byte
	star := false
	for i := 0; i < len(b); i += 16 {
		line := b[i:min(i+16, len(b))]
		if prev != nil && bytes.Equal(line, prev) && len(line) == 16 {
			if !star {
				fmt.Fprintln(w, "*")
				star = true
			}
			continue
		}
		star = false
		prev = line
		var hx strings.Builder
		for j := 0; j < 16; j++ {
			if j == 8 {
				hx.WriteByte(' ')
			}
			if j < len(line) {
				fmt.Fprintf(&hx, "%02x ", line[j])
			} else {
				hx.WriteString("   ")
			}
		}
		asc := make([]byte, len(line))
		for j, c := range line {
			asc[j] = '.'
			if c >= 0x20 && c < 0x7f {
				asc[j] = c
			}
		}
		fmt.Fprintf(w, "%08x  %s |%s|\n", base+int64(i), hx.String(), asc)
	}
	fmt.Fprintf(w, "%08x\n", base+int64(len(b)))
}

func TestSuperblockGolden(t *testing.T) {
	got := goldenText(t)
	path := filepath.Join("testdata", "superblock.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; run go test ./ring -run TestSuperblockGolden -update to create it", err)
	}
	if got != string(want) {
		t.Errorf("segment layout differs from %s (a layout change needs a Version bump and an updated PROTOCOL.md; then run with -update)\n%s",
			path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines that differ, for a readable failure.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, w, g)
		}
	}
	return b.String()
}

// TestGoldenChecksum recomputes the superblock checksum of the golden
// geometry independently (CRC-32C over bytes 0..59, as PROTOCOL.md says).
func TestGoldenChecksum(t *testing.T) {
	sb, err := ring.EncodeSuperblock(goldenGeometry, goldenCreated)
	if err != nil {
		t.Fatal(err)
	}
	// Bitwise CRC-32C, no table, so the test does not share code with ring.
	crc := ^uint32(0)
	for _, c := range sb[:60] {
		crc ^= uint32(c)
		for k := 0; k < 8; k++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82F63B78
			} else {
				crc >>= 1
			}
		}
	}
	crc = ^crc
	stored := uint32(sb[60]) | uint32(sb[61])<<8 | uint32(sb[62])<<16 | uint32(sb[63])<<24
	if stored != crc {
		t.Fatalf("stored checksum %#08x, CRC-32C of bytes 0..59 is %#08x", stored, crc)
	}
}

const systemPython = "/usr/bin/python3"

// pythonReader returns the path of the reference Python reader, or skips
// the test if Debian's python3 with numpy is missing.
func pythonReader(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("short mode: skipping the Python cross-check")
	}
	if out, err := exec.Command(systemPython, "-c", "import numpy").CombinedOutput(); err != nil {
		t.Skipf("skipping the Python cross-check: %s with numpy is not available (%v: %s); install python3-numpy", systemPython, err, bytes.TrimSpace(out))
	}
	script, err := filepath.Abs(filepath.Join("..", "examples", "python", "framering_read.py"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("reference reader: %v", err)
	}
	return script
}

// TestPythonReader runs examples/python/framering_read.py, written from
// docs/PROTOCOL.md, against a Go producer, and checks every frame it
// returns pixel by pixel, plus its drop accounting.
func TestPythonReader(t *testing.T) {
	script := pythonReader(t)
	for _, c := range []struct {
		name         string
		slots        int
		w, h, stride int
		mode         string
		count        int
		pace         time.Duration // between frames; 0: as fast as possible (provokes torn reads)
		extra        []string
	}{
		{name: "ordered-padded-futex", slots: 16, w: 40, h: 30, stride: 128, mode: "ordered", count: 200, pace: 200 * time.Microsecond},
		{name: "ordered-poll", slots: 8, w: 64, h: 48, mode: "ordered", count: 50, pace: 500 * time.Microsecond, extra: []string{"--poll"}},
		{name: "latest-stress", slots: 2, w: 160, h: 120, mode: "latest", count: 300},
		{name: "ordered-stress", slots: 2, w: 160, h: 120, mode: "ordered", count: 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			runPythonReader(t, script, c.slots, c.w, c.h, c.stride, c.mode, c.count, c.pace, c.extra)
		})
	}
}

func runPythonReader(t *testing.T, script string, slots, w, h, stride int, mode string, count int, pace time.Duration, extra []string) {
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	if stride == 0 {
		stride = w * 3
	}
	frameLen := stride * h
	wr, err := producer.Open(name, producer.Options{Dir: dir, Slots: slots, MaxFrameBytes: frameLen, MetaBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Remove()

	// Hang guard only: the child is killed if it runs far longer than needed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{script, "--dir", dir, "--mode", mode, "--count", strconv.Itoa(count), "--timeout", "30", "--hash"}, extra...)
	cmd := exec.CommandContext(ctx, systemPython, append(args, name)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "ready ") {
		cmd.Wait()
		t.Fatalf("python reader did not start: %q; stderr:\n%s", sc.Text(), stderr.String())
	}
	t.Logf("python: %s", sc.Text())

	// Publish pattern frames until the reader exits.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var published uint64
	var pubErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, frameLen)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := published + 1
			pattern.Fill(buf, n)
			got, err := wr.Publish(ring.FrameInfo{Width: w, Height: h, Format: ring.BGR8, Stride: stride, Meta: []byte(fmt.Sprintf("m%d", n))}, buf)
			if err != nil {
				pubErr = err
				return
			}
			if got != n {
				pubErr = fmt.Errorf("published frame %d, want number %d", got, n)
				return
			}
			published = n
			if pace > 0 {
				time.Sleep(pace)
			}
		}
	}()

	var delivered, bad int
	var summary string
	prev := uint64(0)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "frame "):
			n, err := checkPythonFrame(line, w, h, stride)
			if err != nil {
				bad++
				if bad <= 5 {
					t.Errorf("python returned a wrong frame: %v\n  line: %s", err, line)
				}
			}
			if n <= prev {
				t.Errorf("frame %d delivered after frame %d", n, prev)
			}
			prev = n
			delivered++
		case strings.HasPrefix(line, "summary "):
			summary = line
		default:
			t.Logf("python: %s", line)
		}
	}
	close(stop)
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("python reader: %v; stderr:\n%s", err, stderr.String())
	}
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	if bad > 0 {
		t.Fatalf("%d of %d frames returned by the Python reader were torn or wrong", bad, delivered)
	}
	st := parseSummary(t, summary)
	if st["delivered"] != uint64(delivered) || delivered != count {
		t.Errorf("python delivered %d frames (summary says %d), asked for %d", delivered, st["delivered"], count)
	}
	if st["last"] != prev {
		t.Errorf("summary last=%d, last frame printed %d", st["last"], prev)
	}
	window := st["last"] - st["window_start"] + 1
	if got := st["delivered"] + st["lapped"] + st["skipped"]; got != window {
		t.Errorf("accounting: delivered %d + lapped %d + skipped %d = %d, window %d..%d has %d frames",
			st["delivered"], st["lapped"], st["skipped"], got, st["window_start"], st["last"], window)
	}
	t.Logf("published %d, python delivered %d, lapped %d, skipped %d, torn reads retried %d, wrong frames 0",
		published, st["delivered"], st["lapped"], st["skipped"], st["retries"])
}

// checkPythonFrame verifies one "frame N ... sha256=X meta=Y" line against
// the pattern of frame N, with padded rows stripped.
func checkPythonFrame(line string, w, h, stride int) (uint64, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, fmt.Errorf("malformed line")
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, err
	}
	kv := map[string]string{}
	for _, x := range f[2:] {
		if k, v, ok := strings.Cut(x, "="); ok {
			kv[k] = v
		}
	}
	if want := fmt.Sprintf("%dx%dx3", h, w); kv["shape"] != want {
		return n, fmt.Errorf("shape %s, want %s", kv["shape"], want)
	}
	full := make([]byte, stride*h)
	pattern.Fill(full, n)
	packed := make([]byte, 0, w*h*3)
	for y := 0; y < h; y++ {
		packed = append(packed, full[y*stride:y*stride+w*3]...)
	}
	sum := sha256.Sum256(packed)
	if got := kv["sha256"]; got != hex.EncodeToString(sum[:]) {
		return n, fmt.Errorf("frame %d pixels differ from the pattern (sha256 %s)", n, got)
	}
	if want := hex.EncodeToString([]byte(fmt.Sprintf("m%d", n))); kv["meta"] != want {
		return n, fmt.Errorf("frame %d metadata %s, want %s", n, kv["meta"], want)
	}
	return n, nil
}

// TestCheckPythonFrameCatchesTear shows that the verifier used above
// rejects a frame made of two frames' halves, so "0 wrong frames" means
// something.
func TestCheckPythonFrameCatchesTear(t *testing.T) {
	const w, h, stride = 40, 30, 128
	a, b := make([]byte, stride*h), make([]byte, stride*h)
	pattern.Fill(a, 7)
	pattern.Fill(b, 11)
	copy(a[stride*h/2:], b[stride*h/2:]) // frame 7's top, frame 11's bottom
	var packed []byte
	for y := 0; y < h; y++ {
		packed = append(packed, a[y*stride:y*stride+w*3]...)
	}
	sum := sha256.Sum256(packed)
	line := fmt.Sprintf("frame 7 gen=1 bgr8 shape=%dx%dx3 age_us=1 sha256=%s meta=%s", h, w, hex.EncodeToString(sum[:]), hex.EncodeToString([]byte("m7")))
	if _, err := checkPythonFrame(line, w, h, stride); err == nil {
		t.Fatal("a torn frame passed the check")
	}
	pattern.Fill(a, 7)
	packed = packed[:0]
	for y := 0; y < h; y++ {
		packed = append(packed, a[y*stride:y*stride+w*3]...)
	}
	sum = sha256.Sum256(packed)
	line = fmt.Sprintf("frame 7 gen=1 bgr8 shape=%dx%dx3 age_us=1 sha256=%s meta=%s", h, w, hex.EncodeToString(sum[:]), hex.EncodeToString([]byte("m7")))
	if _, err := checkPythonFrame(line, w, h, stride); err != nil {
		t.Fatalf("an intact frame failed the check: %v", err)
	}
}

// TestPythonReaderWriterRestart closes the writer under the Python reader
// (which must notice through F_OFD_GETLK), reopens it, and checks that the
// reader resumes with the next frame numbers and the new generation.
func TestPythonReaderWriterRestart(t *testing.T) {
	script := pythonReader(t)
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	const w, h = 16, 8
	opts := producer.Options{Dir: dir, Slots: 8, MaxFrameBytes: w * h * 3, MetaBytes: 64}
	wr, err := producer.Open(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { wr.Remove() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, systemPython, script, "--dir", dir, "--count", "6", "--timeout", "30", "--hash", name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	next := func(prefix string) string {
		t.Helper()
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), prefix) {
				return sc.Text()
			}
			t.Logf("python: %s", sc.Text())
		}
		t.Fatalf("python reader ended before a %q line; stderr:\n%s", prefix, stderr.String())
		return ""
	}
	next("ready ")
	buf := make([]byte, w*h*3)
	publish := func(n uint64) {
		t.Helper()
		pattern.Fill(buf, n)
		got, err := wr.Publish(ring.FrameInfo{Width: w, Height: h, Format: ring.BGR8, Meta: []byte(fmt.Sprintf("m%d", n))}, buf)
		if err != nil || got != n {
			t.Fatalf("Publish = %d, %v; want %d", got, err, n)
		}
	}
	for n := uint64(1); n <= 3; n++ {
		publish(n)
		line := next("frame ")
		if got, err := checkPythonFrame(line, w, h, w*3); err != nil || got != n || !strings.Contains(line, " gen=1 ") {
			t.Fatalf("frame line %q: number %d, %v; want frame %d of generation 1", line, got, err, n)
		}
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	if line := next("gone "); !strings.Contains(line, "exited or closed") {
		t.Errorf("gone line %q does not say the writer exited or closed", line)
	}
	wr, err = producer.Open(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	for n := uint64(4); n <= 6; n++ {
		publish(n)
		line := next("frame ")
		if got, err := checkPythonFrame(line, w, h, w*3); err != nil || got != n || !strings.Contains(line, " gen=2 ") {
			t.Fatalf("frame line %q: number %d, %v; want frame %d of generation 2", line, got, err, n)
		}
	}
	st := parseSummary(t, next("summary "))
	if st["delivered"] != 6 || st["writer_gone"] != 1 || st["lapped"]+st["skipped"] != 0 {
		t.Errorf("summary %v; want 6 delivered, 1 writer-gone, no drops", st)
	}
}

func parseSummary(t *testing.T, line string) map[string]uint64 {
	t.Helper()
	if line == "" {
		t.Fatal("python reader printed no summary")
	}
	m := map[string]uint64{}
	for _, x := range strings.Fields(line)[1:] {
		k, v, _ := strings.Cut(x, "=")
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("summary %q: %v", line, err)
		}
		m[k] = n
	}
	return m
}
