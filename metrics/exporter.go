package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/framering/framering/internal/segfile"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
	"github.com/prometheus/client_golang/prometheus"
)

// A ring's superblock. Only the exporter exports them: one owner per
// series (see WriterCollector).
var (
	ringFrames       = spec{"ring", "frames_total", "Frames committed into the ring since the segment was created, by all its writers."}
	ringBytes        = spec{"ring", "bytes_total", "Payload bytes committed into the ring since the segment was created."}
	ringHead         = spec{"ring", "head_frame", "Number of the newest committed frame (0: none yet)."}
	ringGeneration   = spec{"ring", "generation", "Writer opens of the ring since it was created: 1 for the first writer; restarts are generation - 1."}
	ringSize         = spec{"ring", "size_bytes", "Size of the shared-memory segment."}
	ringSlots        = spec{"ring", "slots", "Slot count of the ring."}
	ringSlotCapacity = spec{"ring", "slot_capacity_bytes", "Payload capacity of one slot."}
)

// ringDescs are the superblock metrics' descriptions.
type ringDescs struct {
	frames, bytes, head, generation, size, slots, slotCap *prometheus.Desc
}

func newRingDescs(constLabels prometheus.Labels, variable ...string) ringDescs {
	return ringDescs{
		frames:     ringFrames.desc(constLabels, variable...),
		bytes:      ringBytes.desc(constLabels, variable...),
		head:       ringHead.desc(constLabels, variable...),
		generation: ringGeneration.desc(constLabels, variable...),
		size:       ringSize.desc(constLabels, variable...),
		slots:      ringSlots.desc(constLabels, variable...),
		slotCap:    ringSlotCapacity.desc(constLabels, variable...),
	}
}

func (d *ringDescs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.frames, d.bytes, d.head, d.generation, d.size, d.slots, d.slotCap} {
		ch <- x
	}
}

// collect emits the superblock metrics of st. A zero geometry (a
// superblock that could not be read) emits nothing.
func (d *ringDescs) collect(ch chan<- prometheus.Metric, st *ring.Status, labels ...string) {
	g := st.Geometry
	if g.Slots == 0 {
		return
	}
	ch <- prometheus.MustNewConstMetric(d.frames, prometheus.CounterValue, float64(st.FramesTotal), labels...)
	ch <- prometheus.MustNewConstMetric(d.bytes, prometheus.CounterValue, float64(st.BytesTotal), labels...)
	ch <- prometheus.MustNewConstMetric(d.head, prometheus.GaugeValue, float64(st.Head), labels...)
	ch <- prometheus.MustNewConstMetric(d.generation, prometheus.GaugeValue, float64(st.Generation), labels...)
	ch <- prometheus.MustNewConstMetric(d.size, prometheus.GaugeValue, float64(g.Size()), labels...)
	ch <- prometheus.MustNewConstMetric(d.slots, prometheus.GaugeValue, float64(g.Slots), labels...)
	ch <- prometheus.MustNewConstMetric(d.slotCap, prometheus.GaugeValue, float64(g.PayloadCap), labels...)
}

// The exporter's own view of a ring, beyond the superblock counters.
var (
	ringWriterUp = spec{"ring", "writer_up",
		"1 if a writer holds the ring's lock and its heartbeat is fresh, else 0."}
	ringHeartbeatAge = spec{"ring", "heartbeat_age_seconds",
		"Time since the writer last stamped its heartbeat (every 100 ms while it runs)."}
	ringNewestAge = spec{"ring", "newest_frame_age_seconds",
		"Time since the newest frame in the ring was published."}
	exporterRings = spec{"exporter", "rings",
		"Rings the exporter currently reports."}
	exporterSkipped = spec{"exporter", "skipped_files",
		"Files named like rings that the exporter skips because they are not valid rings."}
)

// ExporterOptions configure an [Exporter]. Zero values are defaults.
type ExporterOptions struct {
	// Dir is the directory holding the rings. Empty means /dev/shm.
	Dir string
	// Rings limits the exporter to these ring names. Empty means every
	// ring in Dir, as found at each scrape.
	Rings []string
	// HungAfter is how old a writer's heartbeat may be before the writer
	// counts as down although it holds the lock. Zero means 1 s, the
	// readers' default.
	HungAfter time.Duration
	// Logf reports rings the exporter skips or drops, once per file. Nil
	// means the standard logger.
	Logf func(format string, args ...any)
}

// Exporter is a collector of the superblock metrics of every ring in a
// directory, read from outside the applications: it maps each segment
// read-only and never writes to it. At each scrape it lists the directory
// (or looks up the named rings), maps rings that appeared, drops rings that
// disappeared, and re-maps a ring whose file was replaced (new inode), so
// no stale series outlive their ring. Mappings stay open between scrapes.
//
// Files that are not valid rings (a foreign file named framering.x, a
// corrupt superblock) are skipped and logged once per file.
//
// It is safe for concurrent use; scrapes are serialised.
type Exporter struct {
	opts ExporterOptions
	dir  string

	mu      sync.Mutex
	rings   map[string]*watched
	skipped map[string]fileID // name -> the invalid file, logged once
	closed  bool

	ring                  ringDescs
	up, heartbeat, newest *prometheus.Desc
	count, skips          *prometheus.Desc
}

// fileID identifies one file, so that a replaced file is noticed.
type fileID struct {
	dev, inode uint64
	size       int64
}

// watched is a mapped ring.
type watched struct {
	*segfile.File
	id fileID
}

func (w *watched) close() error { return w.Close() }

// NewExporter returns an exporter of the rings opts names. Call Close
// when done to release the mappings.
func NewExporter(opts ExporterOptions) (*Exporter, error) {
	for _, n := range opts.Rings {
		if err := ring.CheckName(n); err != nil {
			return nil, fmt.Errorf("metrics exporter: %w", err)
		}
	}
	if opts.HungAfter <= 0 {
		opts.HungAfter = time.Second
	}
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	dir := opts.Dir
	if dir == "" {
		dir = ring.DefaultDir
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("metrics exporter: ring directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("metrics exporter: ring directory %s: %w", dir, syscall.ENOTDIR)
	}
	l := []string{"ring"}
	return &Exporter{
		opts:      opts,
		dir:       dir,
		rings:     map[string]*watched{},
		skipped:   map[string]fileID{},
		ring:      newRingDescs(nil, l...),
		up:        ringWriterUp.desc(nil, l...),
		heartbeat: ringHeartbeatAge.desc(nil, l...),
		newest:    ringNewestAge.desc(nil, l...),
		count:     exporterRings.desc(nil),
		skips:     exporterSkipped.desc(nil),
	}, nil
}

// Close unmaps every ring. Later scrapes report nothing.
func (e *Exporter) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	var err error
	for n, w := range e.rings {
		err = errors.Join(err, w.close())
		delete(e.rings, n)
	}
	return err
}

// Describe implements [prometheus.Collector].
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	e.ring.describe(ch)
	for _, d := range []*prometheus.Desc{e.up, e.heartbeat, e.newest, e.count, e.skips} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector]: it rescans the directory and
// reports every ring.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.scan()
	names := make([]string, 0, len(e.rings))
	for n := range e.rings {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w := e.rings[n]
		if err := e.collect(ch, w); err != nil {
			// Truncated under the mapping: skipped until the file changes.
			e.skip(n, w.id, fmt.Errorf("ring %q became unreadable: %w", n, err))
		}
	}
	ch <- prometheus.MustNewConstMetric(e.count, prometheus.GaugeValue, float64(len(e.rings)))
	ch <- prometheus.MustNewConstMetric(e.skips, prometheus.GaugeValue, float64(len(e.skipped)))
}

// scan brings e.rings in line with the directory.
func (e *Exporter) scan() {
	names := e.opts.Rings
	if len(names) == 0 {
		names = e.list()
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		path := ring.Path(e.dir, n)
		in, err := shm.StatPath(path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				e.skip(n, fileID{}, err)
			}
			continue
		}
		id := fileID{dev: in.Dev, inode: in.Inode, size: in.Size}
		if w := e.rings[n]; w != nil && w.id == id {
			seen[n] = true
			continue
		}
		if bad, ok := e.skipped[n]; ok && bad == id {
			seen[n] = true // still the same invalid file: say nothing
			continue
		}
		w, err := open(e.dir, n, id)
		if err != nil {
			e.skip(n, id, err)
			seen[n] = true
			continue
		}
		if old := e.rings[n]; old != nil {
			old.close() // replaced by a writer with another geometry
		}
		delete(e.skipped, n)
		e.rings[n] = w
		seen[n] = true
	}
	for n := range e.rings {
		if !seen[n] {
			e.drop(n)
		}
	}
	for n := range e.skipped {
		if !seen[n] {
			delete(e.skipped, n)
		}
	}
}

// skip records file id of ring n as invalid, logging it the first time.
func (e *Exporter) skip(n string, id fileID, err error) {
	if old, ok := e.skipped[n]; !ok || old != id {
		e.opts.Logf("metrics exporter: skipping %s (logged once per file): %v", ring.Path(e.dir, n), err)
	}
	e.skipped[n] = id
	e.drop(n)
}

func (e *Exporter) drop(n string) {
	if w := e.rings[n]; w != nil {
		w.close()
		delete(e.rings, n)
	}
}

// list returns the ring names in the directory: files framering.<name>
// with a valid name. Writers' temporary files (.framering-tmp.*) do not
// match.
func (e *Exporter) list() []string {
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		e.opts.Logf("metrics exporter: list %s: %v", e.dir, err)
		return nil
	}
	var names []string
	for _, ent := range ents {
		n, ok := strings.CutPrefix(ent.Name(), ring.FilePrefix)
		if !ok || ring.CheckName(n) != nil {
			continue
		}
		names = append(names, n)
	}
	return names
}

// open maps ring name read-only and validates its superblock. The owner
// is not checked, so the exporter can run as a monitoring user in the
// producers' group; world-writable and irregular files are still refused.
func open(dir, name string, id fileID) (*watched, error) {
	f, err := segfile.Open(dir, name, shm.Trust{GroupWrite: true, OtherOwner: true})
	if err != nil {
		return nil, err
	}
	return &watched{File: f, id: id}, nil
}

// collect emits the metrics of one ring. An error means the segment can
// no longer be read (truncated under the mapping).
func (e *Exporter) collect(ch chan<- prometheus.Metric, w *watched) error {
	var st ring.Status
	err := shm.Guard(func() error {
		st = w.Seg.Status()
		return nil
	})
	if err != nil {
		return err
	}
	pub := w.newest(st.Head)
	now := ring.Now()
	l := w.Writer(e.opts.HungAfter)
	if l.State == segfile.Unknown {
		return errors.New(l.Why)
	}
	hbAge := l.HeartbeatAge
	up := 0.0
	if l.Alive {
		up = 1
	}
	e.ring.collect(ch, &st, w.Name)
	ch <- prometheus.MustNewConstMetric(e.up, prometheus.GaugeValue, up, w.Name)
	if st.Heartbeat > 0 {
		ch <- prometheus.MustNewConstMetric(e.heartbeat, prometheus.GaugeValue, hbAge.Seconds(), w.Name)
	}
	if pub > 0 {
		ch <- prometheus.MustNewConstMetric(e.newest, prometheus.GaugeValue, time.Duration(max(now-pub, 0)).Seconds(), w.Name)
	}
	return nil
}

// newest returns the publish time (CLOCK_MONOTONIC ns) of frame head, read
// under the slot's seqlock, or 0 if it cannot be had: no frame yet, the
// slot being rewritten, or a value that makes no sense.
func (w *watched) newest(head uint64) int64 {
	if head == 0 {
		return 0
	}
	h, stable := w.ReadSlot(head)
	if !stable || h.FrameNo != head || h.PublishNs <= 0 || h.PublishNs > ring.Now() {
		return 0
	}
	return h.PublishNs
}
