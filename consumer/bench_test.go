package consumer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

func init() {
	testutil.Helper("gap-writer", helperGapWriter)
	testutil.Helper("futex-pinger", helperFutexPinger)
}

// BenchmarkViewFixedCost is what a view read costs beyond waiting: seqlock
// checks, header copy and validation, Acquire and Release. Each iteration
// publishes a frame in place (untimed) and times Acquire+Release. The goal
// is <= 1 µs, and the same at 3840x2160x3 as at 640x404x3 (no copy).
func BenchmarkViewFixedCost(b *testing.B) {
	for _, s := range []struct{ w, h int }{{640, 404}, {3840, 2160}} {
		b.Run(fmt.Sprintf("%dx%dx3", s.w, s.h), func(b *testing.B) {
			dir, name := testutil.ShmDir(b), testutil.Name(b)
			w, err := producer.Open(name, producer.Options{Dir: dir, Slots: 8, MaxWidth: s.w, MaxHeight: s.h})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Remove()
			r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Next})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			info := ring.FrameInfo{Width: s.w, Height: s.h, Format: ring.BGR8}
			ctx := context.Background()
			var total int64
			b.ReportAllocs()
			for b.Loop() {
				l, _ := w.Reserve(info)
				l.Commit()
				t0 := ring.Now()
				v, err := r.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := v.Release(); err != nil {
					b.Fatal(err)
				}
				total += ring.Now() - t0
			}
			b.ReportMetric(float64(total)/float64(b.N), "view_ns/op")
		})
	}
}

// helperGapWriter publishes COUNT small frames at random 1-3 ms gaps.
func helperGapWriter() int {
	w, err := producer.Open(os.Getenv("RING"), producer.Options{Dir: os.Getenv("DIR"), Slots: 8, MaxFrameBytes: 640 * 404 * 3})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer w.Close()
	fmt.Println("ready")
	waitGo()
	info := ring.FrameInfo{Width: 640, Height: 404, Format: ring.BGR8}
	for i := envInt("COUNT", 100); i > 0; i-- {
		time.Sleep(time.Millisecond + rand.N(2*time.Millisecond))
		l, _ := w.Reserve(info)
		if err := l.Commit(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func waitGo() {
	gf := os.Getenv("GO_FILE")
	for gf != "" {
		if _, err := os.Stat(gf); err == nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// pingPage is the shared page of the bare futex ping: the futex word and
// the waker's timestamp.
type pingPage struct {
	word  atomic.Uint32
	_     [60]byte
	stamp atomic.Int64
}

func mapPing(path string, create bool) (*pingPage, func(), error) {
	var f *shm.File
	var err error
	if create {
		f, err = shm.Create(path, 4096, 0o600)
	} else {
		f, err = shm.Open(path, true)
	}
	if err != nil {
		return nil, nil, err
	}
	m, err := shm.Map(f, 4096, true)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	// Valid: the page is 4096 bytes, page-aligned, and outlives every use.
	p := (*pingPage)(unsafe.Pointer(&m.Bytes()[0]))
	return p, func() { m.Unmap(); f.Close() }, nil
}

// helperFutexPinger stamps the time and wakes the shared futex COUNT times
// at random 1-3 ms gaps: the bare-futex baseline for wake-up latency.
func helperFutexPinger() int {
	p, done, err := mapPing(os.Getenv("PING"), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer done()
	fmt.Println("ready")
	waitGo()
	for i := envInt("COUNT", 100); i > 0; i-- {
		time.Sleep(time.Millisecond + rand.N(2*time.Millisecond))
		p.stamp.Store(ring.Now())
		p.word.Add(1)
		if os.Getenv("SPIN") == "" {
			shm.FutexWake(&p.word, 1)
		}
	}
	return 0
}

// BenchmarkWakeLatency measures publish -> reader-awake latency across two
// processes, the writer publishing at random 1-3 ms gaps, for framering's
// futex wait, spin mode and the old recipe's 1 ms sleep poll, with two
// floors measured between the same two processes: a bare futex ping (for
// futex mode) and a bare spin ping, one stamped word seen by a spinning
// reader (for spin mode: the cost of moving cache lines between cores).
// One iteration is one frame; run with -benchtime=300x or more for stable
// quantiles.
func BenchmarkWakeLatency(b *testing.B) {
	for _, mode := range []string{"bare-futex", "futex", "bare-spin", "spin", "sleep-poll-1ms"} {
		b.Run(mode, func(b *testing.B) {
			var h hist.Histogram
			dir := testutil.ShmDir(b)
			gf := filepath.Join(dir, "go")
			count := fmt.Sprintf("COUNT=%d", b.N)
			if mode == "bare-futex" || mode == "bare-spin" {
				path := filepath.Join(dir, "ping")
				p, done, err := mapPing(path, true)
				if err != nil {
					b.Fatal(err)
				}
				defer done()
				spin := ""
				if mode == "bare-spin" {
					spin = "SPIN=1"
				}
				c := testutil.Start(b, "futex-pinger", "PING="+path, "GO_FILE="+gf, count, spin)
				if _, err := c.Expect("ready", hang); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				os.WriteFile(gf, nil, 0o600)
				for i := 0; i < b.N; i++ {
					// Wait for ping i+1 by count, so a ping missed while this
					// process was descheduled cannot hang the loop.
					for {
						v := p.word.Load()
						if v >= uint32(i+1) {
							break
						}
						if mode == "bare-futex" {
							shm.FutexWait(&p.word, v, time.Second)
						}
					}
					h.Record(ring.Now() - p.stamp.Load())
				}
				c.Wait(hang)
			} else {
				name := testutil.Name(b)
				c := testutil.Start(b, "gap-writer", "DIR="+dir, "RING="+name, "GO_FILE="+gf, count)
				if _, err := c.Expect("ready", hang); err != nil {
					b.Fatal(err)
				}
				opts := consumer.Options{Dir: dir, StartAt: consumer.Next}
				if mode == "spin" {
					opts.Spin = 10 * time.Millisecond
				}
				r, err := consumer.Open(name, opts)
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				ctx := context.Background()
				b.ResetTimer()
				os.WriteFile(gf, nil, 0o600)
				for i := 0; i < b.N; i++ {
					if mode == "sleep-poll-1ms" {
						// The old recipe: look, and if nothing is new, sleep 1 ms.
						for r.Head() < uint64(i+1) {
							time.Sleep(time.Millisecond)
						}
					}
					v, err := r.Acquire(ctx)
					if err != nil {
						b.Fatal(err)
					}
					at := ring.Now()
					pub := v.Frame().Published
					v.Release()
					h.Record(at - pub)
				}
				c.Wait(hang)
			}
			s := h.Snapshot().Latency()
			b.ReportMetric(float64(s.Quantile(0.5)), "p50_ns")
			b.ReportMetric(float64(s.Quantile(0.99)), "p99_ns")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkWakeOnStop measures how long a read blocked in its futex wait
// (a one-hour slice) takes to return after Close or a cancelled context,
// with futex_waitv and with the FUTEX_WAIT fallback. One iteration is one
// stop; the read is given 1 ms to get into the kernel first.
func BenchmarkWakeOnStop(b *testing.B) {
	for _, how := range []string{"cancel", "close"} {
		for _, fallback := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/fallback=%v", how, fallback), func(b *testing.B) {
				if !fallback && !shm.HaveWaitv() {
					b.Skip("no futex_waitv")
				}
				shm.ForceFallback(fallback)
				defer shm.ForceFallback(false)
				dir, name := testutil.ShmDir(b), testutil.Name(b)
				w, err := producer.Open(name, producer.Options{Dir: dir, Slots: 4, MaxFrameBytes: 64})
				if err != nil {
					b.Fatal(err)
				}
				defer w.Remove()
				var h hist.Histogram
				opts := consumer.Options{Dir: dir, StartAt: consumer.Next, WaitSlice: time.Hour}
				var shared *consumer.Reader
				if how == "cancel" {
					if shared, err = consumer.Open(name, opts); err != nil {
						b.Fatal(err)
					}
					defer shared.Close()
				}
				for b.Loop() {
					r := shared
					if r == nil {
						if r, err = consumer.Open(name, opts); err != nil {
							b.Fatal(err)
						}
					}
					waiting := make(chan struct{}, 1)
					r.SetBeforeWait(func() {
						select {
						case waiting <- struct{}{}:
						default:
						}
					})
					ctx, cancel := context.WithCancel(context.Background())
					done := make(chan int64, 1)
					go func() {
						r.Read(ctx, nil)
						done <- ring.Now()
					}()
					<-waiting
					time.Sleep(time.Millisecond)
					t0 := ring.Now()
					if how == "cancel" {
						cancel()
					} else {
						r.Close()
					}
					h.Record(<-done - t0)
					cancel()
				}
				s := h.Snapshot().Latency()
				b.ReportMetric(float64(s.Quantile(0.5)), "p50_ns")
				b.ReportMetric(float64(s.Quantile(0.99)), "p99_ns")
				b.ReportMetric(float64(s.Max()), "max_ns")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
