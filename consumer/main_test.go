package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

func TestMain(m *testing.M) {
	testutil.Helper("writer", helperWriter)
	testutil.Helper("reader", helperReader)
	testutil.Helper("idle-reader", helperIdleReader)
	testutil.Main(m)
}

func envInt(k string, def int) int {
	if v := os.Getenv(k); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil {
			return n
		}
	}
	return def
}

func envDur(k string, def time.Duration) time.Duration {
	if v := os.Getenv(k); v != "" {
		d, err := time.ParseDuration(v)
		if err == nil {
			return d
		}
	}
	return def
}

// helperWriter publishes pattern frames through loans.
//
//	RING, DIR       ring name and directory
//	SLOTS, BYTES    geometry
//	COUNT           frames to publish (0: until DURATION)
//	DURATION        how long to publish when COUNT is 0
//	GAP             pause between frames
//	PAUSE_AT        reserve this frame, fill half of it, print "midframe", and hang
//	GO_FILE         after creating the ring, wait for this file to exist
func helperWriter() int {
	name, dir := os.Getenv("RING"), os.Getenv("DIR")
	size := envInt("BYTES", 64<<10)
	w, err := producer.Open(name, producer.Options{Dir: dir, Slots: envInt("SLOTS", 8), MaxFrameBytes: size, MetaBytes: 64})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer w.Close()
	fmt.Printf("ready gen=%d pid=%d\n", w.Generation(), os.Getpid())
	if gf := os.Getenv("GO_FILE"); gf != "" {
		for {
			if _, err := os.Stat(gf); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	count := envInt("COUNT", 0)
	pauseAt := uint64(envInt("PAUSE_AT", 0))
	gap := envDur("GAP", 0)
	end := time.Now().Add(envDur("DURATION", time.Second))
	var published uint64
	for i := 0; count == 0 || i < count; i++ {
		if count == 0 && i&63 == 0 && time.Now().After(end) {
			break
		}
		l, err := w.Reserve(ring.FrameInfo{Format: ring.Raw, Len: size})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		px := l.Data()
		if l.Number() == pauseAt {
			pattern.Fill(px[:size/2], l.Number()+1) // garbage for frame n
			fmt.Printf("midframe %d\n", l.Number())
			select {} // wait for SIGKILL
		}
		pattern.Fill(px, l.Number())
		if err := l.Commit(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		published = l.Number()
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	fmt.Printf("published last=%d\n", published)
	return 0
}

// helperReader reads and verifies every accepted frame word by word.
//
//	RING, DIR     ring
//	MODE          ordered|latest
//	VIEW          1: zero-copy views instead of copies
//	UNTIL         stop after delivering or dropping this frame number
//	SLOW          pause after each frame (a slow reader)
//	GONE_OK       keep going after ErrWriterGone, up to this many times
func helperReader() int {
	opts := consumer.Options{Dir: os.Getenv("DIR"), StartAt: consumer.Oldest}
	if os.Getenv("MODE") == "latest" {
		opts.Mode = consumer.Latest
	}
	r, err := consumer.OpenWait(context.Background(), os.Getenv("RING"), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.Close()
	fmt.Println("ready")
	until := uint64(envInt("UNTIL", 0))
	slow := envDur("SLOW", 0)
	gonesOK := envInt("GONE_OK", 0)
	view := os.Getenv("VIEW") == "1"
	ctx, cancel := context.WithTimeout(context.Background(), envDur("TIMEOUT", 60*time.Second))
	defer cancel()
	buf := make([]byte, r.Geometry().PayloadCap)
	var torn, gones int
	for {
		var n uint64
		if view {
			var bad error
			err = r.ReadInPlace(ctx, func(f *ring.Frame) error {
				n = f.Number
				bad = pattern.Check(f.Data, f.Number)
				return nil
			})
			if err == nil && bad != nil {
				torn++ // accepted by Release, yet wrong: a torn frame accepted
				fmt.Fprintf(os.Stderr, "TORN frame %d accepted: %v\n", n, bad)
			}
			if errors.Is(err, ring.ErrOverwritten) {
				err = nil
			}
		} else {
			var f ring.Frame
			f, err = r.Read(ctx, buf)
			if err == nil {
				n = f.Number
				if bad := pattern.Check(f.Data, f.Number); bad != nil {
					torn++
					fmt.Fprintf(os.Stderr, "TORN frame %d accepted: %v\n", n, bad)
				}
			}
		}
		if errors.Is(err, ring.ErrWriterGone) {
			gones++
			fmt.Printf("gone %d\n", gones)
			if gones > gonesOK {
				break
			}
			continue
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if slow > 0 {
			time.Sleep(slow)
		}
		if until > 0 && r.Stats().Last >= until {
			break
		}
	}
	st := r.Stats()
	fmt.Printf("result delivered=%d dropped=%d torn=%d retries=%d first=%d last=%d gone=%d resumes=%d\n",
		st.Delivered, st.Dropped(), torn, st.Retries, st.WindowStart, st.Last, st.WriterGone, st.Resumes)
	return 0
}

// result is a reader helper's closing line.
type result struct {
	delivered, dropped, torn, retries, first, last, gone, resumes uint64
}

func parseResult(t *testing.T, line string) result {
	t.Helper()
	var r result
	_, err := fmt.Sscanf(line, "result delivered=%d dropped=%d torn=%d retries=%d first=%d last=%d gone=%d resumes=%d",
		&r.delivered, &r.dropped, &r.torn, &r.retries, &r.first, &r.last, &r.gone, &r.resumes)
	if err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	return r
}

// startWriter starts a writer child that creates the ring and waits for
// go() before publishing, so readers can open it first.
func startWriter(t *testing.T, dir, name string, kv ...string) (w *testutil.Child, ready string, goNow func()) {
	t.Helper()
	gf := filepath.Join(t.TempDir(), "go")
	w = testutil.Start(t, "writer", append(ringEnv(dir, name, "GO_FILE="+gf), kv...)...)
	ready, err := w.Expect("ready", hang)
	if err != nil {
		t.Fatal(err)
	}
	return w, ready, func() {
		if err := os.WriteFile(gf, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func ringEnv(dir, name string, kv ...string) []string {
	return append([]string{"DIR=" + dir, "RING=" + name}, kv...)
}
