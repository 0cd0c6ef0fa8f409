package preview

import (
	"errors"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/framering/framering/internal/segfile"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
)

// RingInfo is one row of the index: what a ring's superblock and newest
// slot header say, and whether its writer lives. Pointers are null in JSON
// when the value is not known.
type RingInfo struct {
	Name  string `json:"name"`
	State string `json:"state"` // alive, starting, hung, gone, unknown, or unreadable
	Error string `json:"error,omitempty"`

	WriterPID int `json:"writer_pid"`
	// Geometry.
	Slots     int   `json:"slots"`
	SlotBytes int   `json:"slot_bytes"`
	MetaBytes int   `json:"meta_bytes"`
	SizeBytes int64 `json:"size_bytes"`
	// The newest frame's shape (zero before the first frame).
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Channels int    `json:"channels"`
	Format   string `json:"format"`
	Bytes    int    `json:"frame_bytes"` // its payload length
	// Counters.
	Head        uint64   `json:"head"`         // newest frame number
	FramesTotal uint64   `json:"frames_total"` // committed since the segment was created
	Generation  uint64   `json:"generation"`   // writer opens
	RateFPS     *float64 `json:"rate_fps"`     // frames per second over the last second or so
	NewestAgeMs *float64 `json:"newest_age_ms"`
	HeartbeatMs *float64 `json:"heartbeat_age_ms"`
	// Previewed says the preview has a reader open on the ring (a page
	// watched it within Options.Idle, or Watch gave it one).
	Previewed bool `json:"previewed"`
}

// Index is what GET /api/rings returns.
type Index struct {
	Dir   string     `json:"dir"`
	Rings []RingInfo `json:"rings"`
}

// indexer keeps the rings of a directory mapped between requests (like the
// metrics exporter) and remembers their frame totals to compute rates.
type indexer struct {
	dir       string
	hungAfter time.Duration

	mu    sync.Mutex
	rings map[string]*watched
}

// fileID identifies one file, so that a replaced one is noticed.
type fileID struct {
	dev, inode uint64
	size       int64
}

type watched struct {
	f       *segfile.File
	id      fileID
	err     error     // why the file cannot be read (then f is nil)
	samples []sample  // frame totals seen, oldest first
	first   time.Time // when the ring was first listed
}

type sample struct {
	at     time.Time
	frames uint64
}

// rateWindow is how far back a rate looks; samples older than twice that
// are dropped.
const rateWindow = time.Second

func newIndexer(dir string, hungAfter time.Duration) *indexer {
	return &indexer{dir: dir, hungAfter: hungAfter, rings: map[string]*watched{}}
}

func (x *indexer) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for n, w := range x.rings {
		if w.f != nil {
			w.f.Close()
		}
		delete(x.rings, n)
	}
}

// names lists the ring names in the directory, sorted.
func (x *indexer) names() ([]string, error) {
	ents, err := os.ReadDir(x.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), ring.FilePrefix); ok && ring.CheckName(n) == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// list reports every ring in the directory. When a live ring has no
// earlier sample to compute a rate from, it samples again after 200 ms
// (as framering ls does), so that the first answer has rates.
func (x *indexer) list() (*Index, error) {
	names, err := x.names()
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	seen := make(map[string]bool, len(names))
	fresh := false
	for _, n := range names {
		seen[n] = true
		w := x.refresh(n)
		if w != nil && w.f != nil && len(w.samples) == 0 {
			fresh = true
		}
	}
	for n, w := range x.rings {
		if !seen[n] {
			if w.f != nil {
				w.f.Close()
			}
			delete(x.rings, n)
		}
	}
	if fresh {
		for _, n := range names {
			if w := x.rings[n]; w != nil && w.f != nil && len(w.samples) == 0 {
				x.sample(w)
			}
		}
		x.mu.Unlock()
		time.Sleep(200 * time.Millisecond)
		x.mu.Lock()
	}
	idx := &Index{Dir: x.dir, Rings: []RingInfo{}}
	for _, n := range names {
		if w := x.rings[n]; w != nil {
			idx.Rings = append(idx.Rings, x.info(n, w))
		}
	}
	return idx, nil
}

// one reports ring name alone; ok is false if it does not exist.
func (x *indexer) one(name string) (RingInfo, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	w := x.refresh(name)
	if w == nil {
		return RingInfo{Name: name, State: "absent"}, false
	}
	return x.info(name, w), true
}

// refresh maps ring n, or maps it again if its file changed; nil if it
// does not exist. Called with x.mu held.
func (x *indexer) refresh(n string) *watched {
	in, err := shm.StatPath(ring.Path(x.dir, n))
	if err != nil {
		if old := x.rings[n]; old != nil && old.f != nil {
			old.f.Close()
		}
		delete(x.rings, n)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		w := &watched{err: err, first: time.Now()}
		x.rings[n] = w
		return w
	}
	id := fileID{dev: in.Dev, inode: in.Inode, size: in.Size}
	if w := x.rings[n]; w != nil && w.id == id {
		return w
	}
	if old := x.rings[n]; old != nil && old.f != nil {
		old.f.Close() // replaced by a writer with another geometry
	}
	w := &watched{id: id, first: time.Now()}
	// Inspection only: any owner, group-writable accepted, as framering ls.
	w.f, w.err = segfile.Open(x.dir, n, shm.Trust{GroupWrite: true, OtherOwner: true})
	x.rings[n] = w
	return w
}

// sample records w's frame total now.
func (x *indexer) sample(w *watched) (ring.Status, error) {
	var st ring.Status
	err := shm.Guard(func() error { st = w.f.Seg.Status(); return nil })
	if err != nil {
		return st, err
	}
	now := time.Now()
	w.samples = append(w.samples, sample{now, st.FramesTotal})
	i := 0
	for i < len(w.samples)-2 && now.Sub(w.samples[i+1].at) >= rateWindow {
		i++ // keep the newest sample at least rateWindow old, and everything after it
	}
	w.samples = w.samples[i:]
	return st, nil
}

// info builds the row of ring n. Called with x.mu held.
func (x *indexer) info(n string, w *watched) RingInfo {
	ri := RingInfo{Name: n, State: "unreadable"}
	if w.err != nil {
		ri.Error = w.err.Error()
		return ri
	}
	st, err := x.sample(w)
	if err != nil {
		ri.Error = err.Error()
		return ri
	}
	g := st.Geometry
	ri.Slots, ri.SlotBytes, ri.MetaBytes, ri.SizeBytes = g.Slots, g.PayloadCap, g.MetaCap, g.Size()
	ri.Head, ri.FramesTotal, ri.Generation, ri.WriterPID = st.Head, st.FramesTotal, st.Generation, st.WriterPID

	l := w.f.Writer(x.hungAfter)
	ri.State = l.State
	if l.State == segfile.Unknown || l.State == segfile.Gone || l.State == segfile.Hung {
		ri.Error = l.Why
	}
	if st.Heartbeat > 0 {
		ri.HeartbeatMs = ms(l.HeartbeatAge)
	}
	if len(w.samples) >= 2 {
		a, b := w.samples[0], w.samples[len(w.samples)-1]
		if dt := b.at.Sub(a.at).Seconds(); dt > 0 && b.frames >= a.frames {
			r := float64(b.frames-a.frames) / dt
			ri.RateFPS = &r
		}
	}
	if st.Head > 0 {
		hdr, stable := w.f.ReadSlot(st.Head)
		if stable && hdr.FrameNo == st.Head {
			if fi, _, err := hdr.Info(g); err == nil {
				ri.Width, ri.Height, ri.Channels, ri.Format, ri.Bytes = fi.Width, fi.Height, fi.Channels, fi.Format.String(), fi.Len
			}
			if now := ring.Now(); hdr.PublishNs > 0 && hdr.PublishNs <= now {
				ri.NewestAgeMs = ms(time.Duration(now - hdr.PublishNs))
			}
		}
	}
	return ri
}

// ms is d in milliseconds, for JSON.
func ms(d time.Duration) *float64 {
	v := float64(d.Microseconds()) / 1e3
	return &v
}
