package bridge

import (
	"strings"
	"testing"

	"github.com/framering/framering/ring"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// FuzzParse feeds arbitrary messages to the header parser: it never
// panics, and whatever it accepts is self-consistent.
func FuzzParse(f *testing.F) {
	o, err := NewOut(OutConfig{Ring: "fuzz", Subject: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	for _, mp := range []int{300, 4096} {
		for _, m := range messages(f, o, makeFrame(ring.BGR8, 20, 10, 64, 1), 1, mp) {
			f.Add(m)
		}
	}
	f.Add([]byte("FRBR\x01"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, body, err := parse(msg, 1<<20)
		if err != nil {
			if !strings.Contains(err.Error(), "rejected") {
				t.Fatalf("error %v does not wrap errWire", err)
			}
			return
		}
		if h.kind != kindChunk {
			return
		}
		if uint64(h.chunk)*uint64(h.chunkSize)+uint64(len(body)) > uint64(h.total) || h.dataLen > 1<<20 {
			t.Fatalf("accepted chunk %d of %d with %d bytes, total %d", h.chunk, h.count, len(body), h.total)
		}
	})
}

// TestHeaderRoundTrip encodes and parses a header.
func TestHeaderRoundTrip(t *testing.T) {
	o, err := NewOut(OutConfig{Ring: "rt", Subject: "rt"})
	if err != nil {
		t.Fatal(err)
	}
	f := makeFrame(ring.RGB8, 30, 20, 0, 3)
	msgs := messages(t, o, f, 77, 1024)
	if len(msgs) != 3 { // 1800 + 12 bytes in chunks of 896
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	for i, m := range msgs {
		h, body, err := parse(m, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if h.chunk != uint32(i) || h.count != 3 || h.frame != 77 || h.seq != 1 || h.format != ring.RGB8 || h.width != 30 || h.height != 20 ||
			h.stride != 90 || h.dataLen != 1800 || h.metaLen != uint32(len(f.meta)) || h.stream != o.stream || h.session != o.session || len(body) == 0 {
			t.Fatalf("chunk %d parsed as %+v", i, h)
		}
	}
	if _, _, err := parse(msgs[0], 1000); err == nil || !strings.Contains(err.Error(), "too_large") {
		t.Fatalf("frame of 1800 bytes under a limit of 1000: %v", err)
	}
}

// TestCollectorLint checks the metrics' names and help with client_golang's linter.
func TestCollectorLint(t *testing.T) {
	o, err := NewOut(OutConfig{Ring: "m", Subject: "s"})
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewIn(InConfig{Ring: "m2", Subject: "s"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(o.Collector(), in.Collector())
	probs, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	n, err := testutil.GatherAndCount(reg, "framering_bridge_dropped_frames_total", "framering_bridge_chunk_errors_total")
	if err != nil || n != 3+5+len(chunkReasons) {
		t.Fatalf("%d drop and chunk error series (%v), want %d", n, err, 3+5+len(chunkReasons))
	}
}
