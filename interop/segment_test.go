package interop_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/framering/framering/internal/testutil"
)

// The bytes of a segment that legitimately differ between two writers of
// the same geometry and frames: the writer's pid and clocks.
var (
	superClocks = []field{{"WriterPID", 64, 4}, {"WriterStart", 72, 8}, {"Created", 88, 8}, {"Heartbeat", 128, 8}}
	slotClocks  = []field{{"PublishNs", 56, 8}, {"CaptureNs", 64, 8}, {"WallNs", 72, 8}}
)

type field struct {
	name     string
	off, len int
}

// maskClocks returns a copy of segment b with the pids and clocks zeroed.
func maskClocks(b []byte) []byte {
	m := bytes.Clone(b)
	for _, f := range superClocks {
		clear(m[f.off : f.off+f.len])
	}
	slots := int(binary.LittleEndian.Uint32(m[16:]))
	stride := int(binary.LittleEndian.Uint64(m[24:]))
	for i := 0; i < slots; i++ {
		for _, f := range slotClocks {
			off := 4096 + i*stride + f.off
			clear(m[off : off+f.len])
		}
	}
	return m
}

// where names the part of a segment that byte off belongs to.
func where(b []byte, off int) string {
	if off < 4096 {
		return fmt.Sprintf("superblock byte %d", off)
	}
	stride := int(binary.LittleEndian.Uint64(b[24:]))
	payloadOff := int(binary.LittleEndian.Uint64(b[32:]))
	slot, in := (off-4096)/stride, (off-4096)%stride
	switch {
	case in < 128:
		return fmt.Sprintf("slot %d header byte %d", slot, in)
	case in < payloadOff:
		return fmt.Sprintf("slot %d metadata area byte %d", slot, in-128)
	}
	return fmt.Sprintf("slot %d payload byte %d", slot, in-payloadOff)
}

// TestSegmentsEqual: for a few geometries, the Go, C and Python writers
// (`send --pattern --count N`, each into a fresh ring) produce the same
// segment: the superblock's static part (bytes 0..63: geometry, flags,
// checksum) byte for byte, and the whole file (every live word, reserved
// zero, slot header, sequence word, metadata area and payload) once the
// writer's pid and clocks are masked. Go's own second run is the control:
// the masks hide nothing else. `framering stat` and the Go reader (the
// library, every frame still in the ring; and framering recv) accept every
// segment and find the pattern in it.
func TestSegmentsEqual(t *testing.T) {
	for _, g := range []struct {
		name  string
		args  []string
		slots uint64
		count uint64
	}{
		{"bgr8-4slots", []string{"--pattern", "64x48x3", "--slots", "4"}, 4, 5},
		{"raw-8slots", []string{"--pattern", "1000x1x1", "--format", "raw", "--slots", "8"}, 8, 11},
		{"gray16-odd-size-2slots", []string{"--pattern", "33x7x1", "--format", "gray16", "--slots", "2"}, 2, 7},
	} {
		t.Run(g.name, func(t *testing.T) {
			dir := testutil.ShmDir(t)
			write := func(t *testing.T, send prog, ring string) []byte {
				t.Helper()
				args := append([]string{"--ring", ring, "--dir", dir, "--fps", "0", "--count", strconv.FormatUint(g.count, 10), "-q"}, g.args...)
				p := start(t, send, args...)
				p.mustExit(t)
				b, err := os.ReadFile(filepath.Join(dir, "framering."+ring))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			ref := write(t, goCLI(t).sub("send"), "reference")
			for _, l := range languages {
				t.Run(l.name, func(t *testing.T) {
					ringName := "by-" + strings.ToLower(l.name)
					b := write(t, l.send(t), ringName)
					if len(b) != len(ref) {
						t.Fatalf("%s segment is %d bytes, Go's %d", l.name, len(b), len(ref))
					}
					if !bytes.Equal(b[:64], ref[:64]) {
						t.Errorf("superblock static part (bytes 0..63) differs:\nGo %x\n%-2s %x", ref[:64], l.name[:1], b[:64])
					}
					if mb, mr := maskClocks(b), maskClocks(ref); !bytes.Equal(mb, mr) {
						n := 0
						for i := range mb {
							if mb[i] != mr[i] {
								if n++; n <= 5 {
									t.Errorf("%s: %#02x, Go: %#02x", where(b, i), mb[i], mr[i])
								}
							}
						}
						t.Errorf("%s segment differs from Go's in %d bytes besides pids and clocks", l.name, n)
					}
					acceptedByGo(t, dir, ringName, g.count, g.slots)
				})
			}
			ents, _ := os.ReadDir(dir)
			var names []string
			for _, e := range ents {
				if !strings.HasPrefix(e.Name(), "framering.") {
					names = append(names, e.Name())
				}
			}
			if len(names) > 0 {
				t.Errorf("the writers left %v behind (temporary files?)", names)
			}
		})
	}
}

var statRe = map[string]*regexp.Regexp{
	"version":    regexp.MustCompile(`(?m)^version\s+2$`),
	"checksum":   regexp.MustCompile(`(?m)^checksum\s+0x[0-9a-f]+ \(valid\)$`),
	"generation": regexp.MustCompile(`(?m)^generation\s+1$`),
}

// acceptedByGo: `framering stat` calls the segment valid, with head
// count; the Go library reads every frame still in it (from the oldest)
// and each is the test pattern; `framering recv --verify` reads the newest.
func acceptedByGo(t *testing.T, dir, name string, count, slots uint64) {
	t.Helper()
	out, err := exec.Command(goCLI(t).path, "stat", "--dir", dir, name).CombinedOutput()
	if err != nil {
		t.Fatalf("framering stat %s: %v\n%s", name, err, out)
	}
	for what, re := range statRe {
		if !re.Match(out) {
			t.Errorf("framering stat %s: %s line missing or wrong:\n%s", name, what, out)
		}
	}
	if h := statHead(t, dir, name); h != count {
		t.Errorf("framering stat %s: head %d, want %d", name, h, count)
	}
	inRing := min(count, slots)
	lib := start(t, goReader(t), "--ring", name, "--dir", dir, "--start", "oldest", "--verify", "--eof", "--timeout", "60s")
	lib.mustExit(t)
	r := readerResult(t, lib)
	if s := r.kv; s["delivered"] != inRing || s["verified"] != inRing || s["mismatches"] != 0 || s["window_start"] != count-inRing+1 || s["last"] != count {
		t.Errorf("the Go library read %v from %s; want the %d frames %d..%d, all verified", r, name, inRing, count-inRing+1, count)
	}
	cli := start(t, goCLI(t).sub("recv"), "--ring", name, "--dir", dir, "--verify", "--count", "1", "-q")
	cli.mustExit(t)
	if s := readerResult(t, cli).kv; s["delivered"] != 1 || s["verified"] != 1 || s["mismatches"] != 0 {
		t.Errorf("framering recv read %v from %s; want the newest frame, verified", s, name)
	}
}
