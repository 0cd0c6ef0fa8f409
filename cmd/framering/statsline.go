package main

import (
	"fmt"
	"time"

	"github.com/framering/framering/consumer"
)

// statsLine computes per-interval rates from a reader's cumulative stats.
type statsLine struct {
	r    *consumer.Reader
	prev consumer.Stats
	at   time.Time
}

type interval struct {
	FPS      float64 `json:"fps"`       // frames delivered per second
	RingFPS  float64 `json:"ring_fps"`  // frames published per second (delivered + dropped)
	P50us    float64 `json:"p50_us"`    // latency publish -> delivery, this interval
	P99us    float64 `json:"p99_us"`    //
	Dropped  uint64  `json:"dropped"`   // dropped since the reader opened
	Frame    uint64  `json:"frame"`     // last frame number considered
	WriterUp bool    `json:"writer_up"` // false while the writer is gone
}

func (iv interval) String() string {
	s := fmt.Sprintf("%.1f fps, latency p50 %v p99 %v, dropped %d, frame %d",
		iv.FPS, fmtDur(time.Duration(iv.P50us*1e3)), fmtDur(time.Duration(iv.P99us*1e3)), iv.Dropped, iv.Frame)
	if !iv.WriterUp {
		s += ", writer gone"
	}
	return s
}

func newStatsLine(r *consumer.Reader) *statsLine {
	return &statsLine{r: r, prev: r.Stats(), at: time.Now()}
}

func (s *statsLine) next() interval {
	now, cur := time.Now(), s.r.Stats()
	dt := now.Sub(s.at).Seconds()
	if dt <= 0 {
		dt = 1
	}
	delta := cur.Latency.Since(s.prev.Latency)
	iv := interval{
		FPS:      float64(cur.Delivered-s.prev.Delivered) / dt,
		RingFPS:  float64(cur.Delivered+cur.Dropped()-s.prev.Delivered-s.prev.Dropped()) / dt,
		P50us:    us(delta.Quantile(0.5)),
		P99us:    us(delta.Quantile(0.99)),
		Dropped:  cur.Dropped(),
		Frame:    cur.Last,
		WriterUp: cur.WriterUp,
	}
	s.prev, s.at = cur, now
	return iv
}

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d) / 1e3 }

// fmtDur rounds d for display.
func fmtDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Nanosecond)
}
