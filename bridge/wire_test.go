package bridge

import (
	"context"
	"errors"
	"fmt"
	"github.com/nats-io/nats-server/v2/server"
	"strings"
	"testing"
	"time"

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

// TestReassembly drives a bridge in's message handling directly, with its
// own clock: a frame whose chunks stop coming expires as incomplete; a
// frame larger than the reassembly budget is refused; a restarted sender's
// chunks interleaved with its old run's are sorted out (the old run's are
// stale, the new run's frames arrive whole, out-of-order chunks included).
func TestReassembly(t *testing.T) {
	in, err := NewIn(InConfig{Ring: testutilName(t), Dir: shmDir(t), Subject: "s", PendingBytes: 10000, ChunkTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer in.sink.close()
	oldRun, _ := NewOut(OutConfig{Ring: "cam", Subject: "s", Stream: "cam@host"})
	newRun, _ := NewOut(OutConfig{Ring: "cam", Subject: "s", Stream: "cam@host"})
	img := func(seed uint64) testFrame { return makeFrame(ring.Gray8, 40, 50, 0, seed) } // 2000 bytes + meta
	const mp = 1024                                                                      // 896-byte chunks: 3 a frame
	at := int64(1e12)
	sec := int64(time.Second)

	// 1. Expiry.
	a := messages(t, oldRun, img(1), 10, mp)
	in.handle(a[0], at)
	in.handle(a[1], at)
	in.expire(at + sec)
	if st := in.Stats(); st.Pending != 1 || st.Incomplete != 0 {
		t.Fatalf("after 1 s: pending %d, incomplete %d; want 1, 0", st.Pending, st.Incomplete)
	}
	in.expire(at + 3*sec)
	if st := in.Stats(); st.Pending != 0 || st.Incomplete != 1 {
		t.Fatalf("after 3 s: pending %d, incomplete %d; want 0, 1", st.Pending, st.Incomplete)
	}
	in.handle(a[2], at+3*sec) // its last chunk, too late
	if st := in.Stats(); st.ChunkErrors["stale"] != 1 || st.Delivered != 0 {
		t.Fatalf("a chunk of an expired frame: stale %d, delivered %d; want 1, 0", st.ChunkErrors["stale"], st.Delivered)
	}

	// 2. Larger than the budget (10000 bytes): refused from its first chunk.
	big := messages(t, oldRun, makeFrame(ring.Gray8, 100, 120, 0, 2), 20, 4096)
	for _, m := range big {
		in.handle(m, at+4*sec)
	}
	if st := in.Stats(); st.TooLarge != 1 || st.Pending != 0 || st.ChunkErrors["stale"] != 1+3 {
		t.Fatalf("a frame over the budget: too large %d, pending %d, stale %d; want 1, 0 and 4 (its other 3 chunks)", st.TooLarge, st.Pending, st.ChunkErrors["stale"])
	}

	// 3. The sender restarts: its new run's chunks (out of order) and the
	// old run's late ones interleave.
	old := messages(t, oldRun, img(3), 30, mp)
	in.handle(old[0], at+5*sec)
	nw := messages(t, newRun, img(4), 40, mp)
	in.handle(nw[2], at+5*sec)  // the new run: its old run's frame is dropped as incomplete
	in.handle(old[1], at+5*sec) // stale: a superseded run
	in.handle(nw[0], at+5*sec)
	in.handle(old[2], at+5*sec) // stale
	in.handle(nw[1], at+5*sec)  // the new run's frame is complete
	st := in.Stats()
	if st.Sessions != 2 || st.Delivered != 1 || st.ChunkErrors["stale"] != 4+2 || st.Incomplete != 2 || st.Pending != 0 {
		t.Fatalf("restart: sessions %d, delivered %d, stale %d, incomplete %d, pending %d; want 2, 1, 6, 2, 0",
			st.Sessions, st.Delivered, st.ChunkErrors["stale"], st.Incomplete, st.Pending)
	}
	r := openRemote(t, in.cfg.Dir, in.cfg.Ring)
	got, err := readFrame(r, hang)
	if err != nil {
		t.Fatal(err)
	}
	want := img(4)
	want.number = 40
	checkSame(t, got, want)
}

// TestAuth runs a server that wants a user and password: the right ones
// connect, a wrong password makes Run fail at once (no endless retrying)
// with an error that does not contain the password, and a token server
// takes a token.
func TestAuth(t *testing.T) {
	port := freePort(t)
	opts := &server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true, Username: "cam", Password: "s3cret-pw"}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(hang) {
		t.Fatal("server did not start")
	}
	defer s.Shutdown()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	run := func(c Conn) error {
		in, err := NewIn(InConfig{Ring: testutilName(t), Dir: shmDir(t), Subject: "auth", NATS: c})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		return in.Run(ctx) // nil when it ran until the deadline: connected
	}
	c := testConn(url)
	c.User, c.Password = "cam", "s3cret-pw"
	if err := run(c); err != nil {
		t.Fatalf("right password: %v", err)
	}
	c.Password = "wrong-pw"
	err = run(c)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("wrong password: Run = %v, want an authorization error", err)
	}
	if strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("the error shows the password: %v", err)
	}
	c = testConn("nats://cam:wrong-pw@127.0.0.1:" + fmt.Sprint(port))
	if err := run(c); err == nil || strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("password in the URL: Run = %v, want an error without the password", err)
	}
	if _, err := NewIn(InConfig{Ring: "x", Subject: "s", NATS: Conn{Token: "t", CredsFile: "f"}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("two credentials: %v, want ErrConfig", err)
	}
}

// TestLoanGoneUnderAssembly re-creates the ring while a frame is being
// reassembled into its slot (the sink aborts the loan, as Close would
// otherwise wait for it): the frame's later chunks must not touch the old
// slot, the frame is dropped and counted, and the next frame arrives.
func TestLoanGoneUnderAssembly(t *testing.T) {
	in, err := NewIn(InConfig{Ring: testutilName(t), Dir: shmDir(t), Subject: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer in.sink.close()
	o, _ := NewOut(OutConfig{Ring: "cam", Subject: "s", Stream: "cam@host"})
	img := func(seed uint64) testFrame { return makeFrame(ring.Gray8, 40, 50, 0, seed) } // 2000 bytes + meta
	const mp = 1024                                                                      // 3 chunks a frame
	at := int64(1e12)
	a := messages(t, o, img(1), 10, mp)
	in.handle(a[0], at)
	if in.sink.out == nil {
		t.Fatal("no loan out after a raw frame's first chunk")
	}
	if _, err := in.sink.open(1<<20, 0); err != nil { // larger slots: a new ring
		t.Fatal(err)
	}
	in.handle(a[1], at)
	in.handle(a[2], at)
	if st := in.Stats(); st.Delivered != 0 || st.RingErrors != 1 || st.Pending != 0 {
		t.Fatalf("frame whose loan was aborted: delivered %d, ring errors %d, pending %d; want 0, 1, 0", st.Delivered, st.RingErrors, st.Pending)
	}
	for _, m := range messages(t, o, img(2), 11, mp) {
		in.handle(m, at)
	}
	if st := in.Stats(); st.Delivered != 1 || st.Delivered+st.Dropped()+st.Pending != st.Window {
		t.Fatalf("next frame: delivered %d, dropped %d, pending %d, window %d", st.Delivered, st.Dropped(), st.Pending, st.Window)
	}
	r := openRemote(t, in.cfg.Dir, in.cfg.Ring)
	got, err := readFrame(r, hang)
	if err != nil {
		t.Fatal(err)
	}
	want := img(2)
	want.number = 11
	checkSame(t, got, want)
}
