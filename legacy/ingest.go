package legacy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// IngestOptions configure [Ingest].
type IngestOptions struct {
	// Dir and Name locate the legacy object ("" means /dev/shm and
	// mmaptest_shm).
	Dir, Name string
	// Ring is the ring to publish into; Producer configures it. Producer.
	// MaxFrameBytes zero means sized for the first legacy frame (the ring
	// is rebuilt with a larger slot if a restarted sender sends larger
	// frames).
	Ring     string
	Producer producer.Options
	// Reader configures the legacy reader (poll interval, compare pass).
	Reader ReaderOptions
	// Count stops after this many frames; zero means no limit (run until
	// ctx ends).
	Count uint64
	// OnFrame, if set, is called after each published frame (progress
	// output, tests).
	OnFrame func(n uint64, f *Frame)
}

// IngestStats is what [Ingest] did.
type IngestStats struct {
	Published uint64      // frames published into the ring
	Reader    ReaderStats // the legacy reader's counters (torn copies refused, re-opens)
}

// Ingest republishes the frames an old sender writes into a legacy slot
// into a framering ring, so that new readers can follow old writers. Each
// distinct legacy frame is published once (see [Reader.Read]); torn
// copies are never published. Channels map to formats as 1 gray8, 3 bgr8,
// 4 bgra8, 2 yuyv. The frame's capture time is the legacy timestamp,
// converted to CLOCK_MONOTONIC. It returns when ctx ends (with nil), after
// Count frames, or on an error.
func Ingest(ctx context.Context, opts IngestOptions) (IngestStats, error) {
	var st IngestStats
	if err := ring.CheckName(opts.Ring); err != nil {
		return st, err
	}
	r, err := NewReader(opts.Dir, opts.Name, opts.Reader)
	if err != nil {
		return st, err
	}
	defer r.Close()
	var w *producer.Writer
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	var buf []byte
	for opts.Count == 0 || st.Published < opts.Count {
		f, err := r.Read(ctx, buf)
		st.Reader = r.Stats()
		if err != nil {
			if ctx.Err() != nil {
				return st, nil
			}
			return st, err
		}
		buf = f.Pixels
		info := ring.FrameInfo{
			Width: f.Width, Height: f.Height, Channels: f.Channels,
			Format:  ring.FormatForChannels(f.Channels),
			Capture: captureFromWall(f.TimestampMs),
		}
		if w == nil || len(f.Pixels) > w.Geometry().PayloadCap {
			if w != nil {
				w.Close()
				w = nil
			}
			po := opts.Producer
			if po.MaxFrameBytes < len(f.Pixels) {
				po.MaxFrameBytes = len(f.Pixels)
				po.MaxWidth, po.MaxHeight = 0, 0
			}
			w, err = producer.Open(opts.Ring, po)
			if err != nil {
				return st, fmt.Errorf("legacy ingest: %w", err)
			}
		}
		if _, err := w.Publish(info, f.Pixels); err != nil {
			return st, fmt.Errorf("legacy ingest: %w", err)
		}
		st.Published++
		if opts.OnFrame != nil {
			opts.OnFrame(st.Published, &f)
		}
	}
	st.Reader = r.Stats()
	return st, nil
}

// captureFromWall converts a wall-clock Unix ms timestamp into
// CLOCK_MONOTONIC ns, by the current offset between the two clocks. A
// timestamp in the future (clock skew) counts as now.
func captureFromWall(ms int64) int64 {
	mono := ring.Now()
	age := time.Now().UnixMilli() - ms
	if age < 0 || age > 1<<40 {
		return mono
	}
	if c := mono - age*int64(time.Millisecond); c > 0 {
		return c
	}
	return mono
}

// MirrorRingOptions configure [MirrorRing].
type MirrorRingOptions struct {
	// Ring is the ring to follow; Consumer configures the reader (Mode
	// Latest is forced: the legacy slot holds one frame).
	Ring     string
	Consumer consumer.Options
	// Dir and Name locate the legacy object; Mirror configures it. A zero
	// Mirror.MaxFrameBytes means sized for the ring's slots.
	Dir, Name string
	Mirror    MirrorOptions
	// Count stops after this many frames mirrored; zero means no limit.
	Count uint64
	// OnFrame, if set, is called after each frame handed to the mirror.
	OnFrame func(f *ring.Frame)
}

// MirrorRing follows a ring written by another process and mirrors its
// frames into a legacy slot, for old readers. Frames are copied out of the
// ring (validated) before they are written into the slot, so a torn ring
// read never reaches old readers. It returns when ctx ends (with nil),
// after Count frames, or on an error. A writer that goes away is waited
// for.
func MirrorRing(ctx context.Context, opts MirrorRingOptions) (MirrorStats, error) {
	co := opts.Consumer
	co.Mode = consumer.Latest
	r, err := consumer.OpenWait(ctx, opts.Ring, co)
	if err != nil {
		if ctx.Err() != nil {
			return MirrorStats{}, nil
		}
		return MirrorStats{}, err
	}
	defer r.Close()
	mo := opts.Mirror
	if mo.MaxFrameBytes == 0 && mo.Width == 0 {
		mo.MaxFrameBytes = r.Geometry().PayloadCap
	}
	m, err := NewMirror(opts.Dir, opts.Name, mo)
	if err != nil {
		return MirrorStats{}, err
	}
	defer m.Close()
	buf := make([]byte, r.Geometry().PayloadCap)
	var n uint64
	for opts.Count == 0 || n < opts.Count {
		f, err := r.Read(ctx, buf)
		switch {
		case ctx.Err() != nil:
			return m.Stats(), nil
		case errors.Is(err, ring.ErrWriterGone), errors.Is(err, ring.ErrTruncated):
			continue // the next read waits for a writer
		case err != nil:
			return m.Stats(), err
		}
		buf = f.Data[:cap(f.Data)] // grown by Read if the ring was rebuilt with larger slots
		if err := m.MirrorFrame(&f); err != nil {
			return m.Stats(), fmt.Errorf("legacy mirror of ring %q: %w", opts.Ring, err)
		}
		n++
		if opts.OnFrame != nil {
			opts.OnFrame(&f)
		}
	}
	return m.Stats(), nil
}
