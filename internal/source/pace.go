package source

import (
	"context"
	"fmt"
	"math"
	"time"
)

// MinFPS is the lowest frame rate a [Pacer] takes besides 0.
const MinFPS = 0.001

// CheckFPS reports whether fps is a frame rate a [Pacer] takes: 0 (as
// fast as possible) or a finite number from [MinFPS] up. NaN, infinities
// and negative numbers are refused.
func CheckFPS(fps float64) error {
	if math.IsNaN(fps) || math.IsInf(fps, 0) || fps < 0 || fps > 0 && fps < MinFPS {
		return fmt.Errorf("frame rate %g is neither 0 nor a number from %g up", fps, MinFPS)
	}
	return nil
}

// Pacer spaces frames 1/fps apart. Frame i is due at start + i/fps, so
// the rate does not drift; a caller that fell behind by more than one
// period (a source that stalled) starts a new schedule from now instead
// of bursting to catch up.
type Pacer struct {
	period time.Duration // 0: no pacing
	start  time.Time
	n      int64
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
}

// NewPacer returns a Pacer for fps frames per second (0: no pacing). fps
// must pass [CheckFPS].
func NewPacer(fps float64) *Pacer {
	p := &Pacer{now: time.Now, sleep: sleepCtx}
	if fps > 0 {
		p.period = time.Duration(float64(time.Second) / fps)
	}
	return p
}

// Wait blocks until the next frame is due, and returns ctx's error if ctx
// ends first.
func (p *Pacer) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.period <= 0 {
		return nil
	}
	now := p.now()
	if p.n == 0 {
		p.start = now
	}
	due := p.start.Add(time.Duration(p.n) * p.period)
	if late := now.Sub(due); late > p.period {
		p.start, p.n, due = now, 0, now // re-anchor: no burst after a stall
	}
	p.n++
	if d := due.Sub(now); d > 0 {
		return p.sleep(ctx, d)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
