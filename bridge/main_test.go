package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// This file holds the tests' calls into producer and consumer, and the
// embedded NATS server.

func TestMain(m *testing.M) { testutil.Main(m) }

// hang guard for every wait: generous, never a timing assertion.
const hang = 30 * time.Second

// testFrame is a frame as the tests publish and check it.
type testFrame struct {
	number                          uint64
	format                          ring.PixelFormat
	width, height, channels, stride int
	capture, published              int64
	pubLo, pubHi                    int64 // as published: the source's publish time lies in [pubLo, pubHi]
	data, meta                      []byte
}

func openWriter(t testing.TB, dir, name string, maxBytes int) *producer.Writer {
	t.Helper()
	w, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: maxBytes, MetaBytes: 4096, Slots: 8})
	return testutil.Removing(t, w, err)
}

// publish publishes f into w and returns its number.
func publish(t testing.TB, w *producer.Writer, f testFrame) uint64 {
	t.Helper()
	n, _, _ := publishAt(t, w, f)
	return n
}

// publishAt publishes f and returns its number and bounds of its publish
// time.
func publishAt(t testing.TB, w *producer.Writer, f testFrame) (n uint64, lo, hi int64) {
	t.Helper()
	info := ring.FrameInfo{Width: f.width, Height: f.height, Format: f.format, Stride: f.stride, Capture: f.capture, Meta: f.meta, Len: len(f.data)}
	lo = ring.Now()
	n, err := w.Publish(info, f.data)
	hi = ring.Now()
	if err != nil {
		t.Fatal(err)
	}
	return n, lo, hi
}

func monoNow() int64 { return ring.Now() }

// openRemote waits for ring name and opens an ordered reader from its
// oldest frame.
func openRemote(t testing.TB, dir, name string) *consumer.Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	r, err := consumer.OpenWait(ctx, name, consumer.Options{Dir: dir, StartAt: consumer.Oldest, HungAfter: hang})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

var errGone = ring.ErrWriterGone

// readFrame reads the next frame of r (hang guard: d).
func readFrame(r *consumer.Reader, d time.Duration) (testFrame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	f, err := r.Read(ctx, nil)
	if err != nil {
		return testFrame{}, err
	}
	return testFrame{
		number: f.Number, format: f.Format, width: f.Width, height: f.Height, channels: f.Channels, stride: f.Stride,
		capture: f.Capture, published: f.Published, data: f.Data, meta: append([]byte(nil), f.Meta...),
	}, nil
}

// readerCounts is a reader's accounting.
type readerCounts struct{ delivered, dropped, windowStart, last uint64 }

func counts(r *consumer.Reader) readerCounts {
	st := r.Stats()
	return readerCounts{st.Delivered, st.Dropped(), st.WindowStart, st.Last}
}

// natsServer runs an embedded NATS server on 127.0.0.1:port (0: a free
// port) with the given max_payload (0: the default, 1 MiB).
func natsServer(t testing.TB, maxPayload int32, port int) (*server.Server, string) {
	t.Helper()
	if port == 0 {
		port = freePort(t)
	}
	opts := &server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true, MaxPayload: maxPayload}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(hang) {
		t.Fatal("embedded NATS server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s, fmt.Sprintf("nats://127.0.0.1:%d", port)
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testConn(url string) Conn {
	return Conn{URL: url, ReconnectWait: 50 * time.Millisecond, PingInterval: time.Second}
}

// runOut runs a bridge out until the test ends; Run must return nil then.
func runOut(t testing.TB, cfg OutConfig) *Out {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	if cfg.HungAfter == 0 {
		// A writer of this process that misses its heartbeats on a busy
		// machine (-race) is not gone; a closed one is seen at once.
		cfg.HungAfter = hang
	}
	o, err := NewOut(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("bridge out Run: %v", err)
			}
		case <-time.After(hang):
			t.Errorf("bridge out Run did not return after cancel")
		}
	})
	return o
}

func runIn(t testing.TB, cfg InConfig) *In {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	in, err := NewIn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("bridge in Run: %v", err)
			}
		case <-time.After(hang):
			t.Errorf("bridge in Run did not return after cancel")
		}
	})
	return in
}

// waitFor polls cond until it holds (hang guard).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// warmUp publishes throw-away frames into w until every remote ring in
// dir exists and a reader of it (ordered, from its oldest frame) got a
// frame, so that the bridges are connected and subscribed. It returns the
// readers and the number of the last throw-away frame.
func warmUp(t testing.TB, w *producer.Writer, f testFrame, dir string, remotes ...string) ([]*consumer.Reader, uint64) {
	t.Helper()
	deadline := time.Now().Add(hang)
	readers := make([]*consumer.Reader, len(remotes))
	got := make([]bool, len(remotes))
	for n := 0; ; n++ {
		last := publish(t, w, f)
		all := true
		for i, name := range remotes {
			if readers[i] == nil {
				r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Oldest, HungAfter: hang})
				if errors.Is(err, ring.ErrNotFound) || errors.Is(err, ring.ErrTruncated) {
					all = false
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				readers[i] = r
				t.Cleanup(func() { r.Close() })
			}
			if !got[i] {
				if _, err := readFrame(readers[i], 20*time.Millisecond); err == nil {
					got[i] = true
				} else if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatal(err)
				}
			}
			all = all && got[i]
		}
		if all {
			// One more frame, read by all: the bridges are done with every
			// earlier one when it arrives.
			sync := publish(t, w, f)
			for _, r := range readers {
				readUntil(t, r, sync, last)
			}
			return readers, sync
		}
		if time.Now().After(deadline) {
			t.Fatalf("warm-up: no frame through the bridge after %d tries", n)
		}
	}
}

// settle waits until a bridge out is not sending a frame.
func settle(t testing.TB, o *Out) OutStats {
	t.Helper()
	var st OutStats
	waitFor(t, "the bridge out to finish sending", func() bool {
		st = o.Stats()
		return st.Attempted == st.Sent+st.PublishErrors && o.idle()
	})
	return st
}

// readUntil reads r until frame n, which it returns; frames up to skip
// (warm-up leftovers) are passed over, any other frame fails the test.
func readUntil(t testing.TB, r *consumer.Reader, n, skip uint64) testFrame {
	t.Helper()
	for {
		f, err := readFrame(r, hang)
		if err != nil {
			t.Fatalf("reading frame %d: %v", n, err)
		}
		if f.number == n {
			return f
		}
		if f.number > skip {
			t.Fatalf("read frame %d, want %d", f.number, n)
		}
	}
}

// checkSame fails unless got is want as the remote ring shows it.
func checkSame(t testing.TB, got, want testFrame) {
	t.Helper()
	if got.number != want.number || got.format != want.format || got.width != want.width || got.height != want.height || got.stride != want.stride {
		t.Fatalf("frame %d %v %dx%d stride %d arrived as frame %d %v %dx%d stride %d",
			want.number, want.format, want.width, want.height, want.stride, got.number, got.format, got.width, got.height, got.stride)
	}
	if !bytes.Equal(got.data, want.data) {
		t.Fatalf("frame %d: data differs (%d bytes, sent %d)", want.number, len(got.data), len(want.data))
	}
	if !bytes.Equal(got.meta, want.meta) {
		t.Fatalf("frame %d: metadata %q, sent %q", want.number, got.meta, want.meta)
	}
	// The capture time keeps its distance before the publish time.
	if d := got.published - got.capture; want.pubLo != 0 && (d < want.pubLo-want.capture || d > want.pubHi-want.capture) {
		t.Fatalf("frame %d: capture %d ns before publish, sent %d to %d ns before", want.number, d, want.pubLo-want.capture, want.pubHi-want.capture)
	}
}

// publishMsgs publishes raw messages on subject from a connection of
// their own (so they arrive in order) and flushes.
func publishMsgs(t testing.TB, url, subject string, msgs ...[]byte) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, m := range msgs {
		if err := nc.Publish(subject, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func testutilName(t testing.TB) string { return testutil.Name(t) }
func shmDir(t testing.TB) string       { return testutil.ShmDir(t) }
