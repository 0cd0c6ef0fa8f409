package preview

import (
	"bytes"
	"context"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/ring"
)

//go:embed static
var staticFS embed.FS

// Options configure a Server. Every zero value is a sensible default.
type Options struct {
	// Dir is the directory holding the rings. Empty means /dev/shm.
	Dir string
	// MaxFPS is how many frames a second the preview reads and encodes
	// per ring, at most. Zero means 25.
	MaxFPS float64
	// Quality is the JPEG quality, 1 to 100. Zero means 80.
	Quality int
	// MaxSide is the longest side of a picture: larger frames are scaled
	// down (the page scales pictures to the window anyway). Zero means
	// 1280; negative means no limit.
	MaxSide int
	// HungAfter is how old a writer's heartbeat may get before it counts
	// as hung. Zero means 1 s.
	HungAfter time.Duration
	// Idle is how long a ring's reader stays open after the last request
	// for it (rings given to Watch stay open until Close). Zero means 30 s.
	Idle time.Duration
	// AllowGroupWritable and AllowOtherOwner are passed to the readers
	// (consumer.Options). The index lists every ring either way: it only
	// reads superblocks, as framering ls does.
	AllowGroupWritable, AllowOtherOwner bool
}

// Limits.
const (
	maxFeeds = 16               // rings previewed at once
	longPoll = 10 * time.Second // a picture request waits this long for a new one
)

var (
	errClosed   = errors.New("preview server closed")
	errTooMany  = fmt.Errorf("more than %d rings previewed at once", maxFeeds)
	errTimeout  = errors.New("no new frame")
	errStopped  = errors.New("the ring's preview stopped")
	errBadFrame = errors.New("frame must be a frame number")
)

// Server is an http.Handler serving the preview: an index of every ring in
// the directory, a page per ring with its live picture, metadata and
// counters, and the JSON, JPEG, MJPEG and PNG endpoints behind them
// (see the package documentation). It is safe for concurrent use; Close
// it when done.
type Server struct {
	opts  Options
	mux   *http.ServeMux
	index *indexer
	ctx   context.Context
	stop  context.CancelFunc
	pumps sync.WaitGroup
	seqs  atomic.Uint64 // the highest picture number any feed issued

	mu     sync.Mutex
	feeds  map[string]*feed
	closed bool
}

// New returns a preview server for the rings in opts.Dir.
func New(opts Options) (*Server, error) {
	if opts.Dir == "" {
		opts.Dir = ring.DefaultDir
	}
	if opts.MaxFPS == 0 {
		opts.MaxFPS = 25
	}
	if opts.Quality == 0 {
		opts.Quality = 80
	}
	if opts.MaxSide == 0 {
		opts.MaxSide = 1280
	}
	if opts.HungAfter <= 0 {
		opts.HungAfter = time.Second
	}
	if opts.Idle <= 0 {
		opts.Idle = 30 * time.Second
	}
	switch {
	case opts.MaxFPS < 0 || opts.MaxFPS > 1000:
		return nil, fmt.Errorf("preview: max fps %v: want 0 to 1000", opts.MaxFPS)
	case opts.Quality < 1 || opts.Quality > 100:
		return nil, fmt.Errorf("preview: JPEG quality %d: want 1 to 100", opts.Quality)
	}
	if fi, err := os.Stat(opts.Dir); err != nil {
		return nil, fmt.Errorf("preview: ring directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("preview: ring directory %s: %w", opts.Dir, syscall.ENOTDIR)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{opts: opts, index: newIndexer(opts.Dir, opts.HungAfter), ctx: ctx, stop: stop, feeds: map[string]*feed{}}
	s.routes()
	return s, nil
}

// Watch previews r's ring from now on, whether or not a page watches it,
// and keeps r open until Close (the rings a page opens are closed after
// Options.Idle without requests). r should be a consumer.Latest reader:
// the preview wants the newest frame. The server takes r over and closes
// it. A ring already previewed gets r in place of its reader.
func (s *Server) Watch(r *consumer.Reader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		r.Close()
		return errClosed
	}
	if old := s.feeds[r.Name()]; old != nil {
		old.cancel() // its pump closes its reader
	}
	f := newFeed(s, r.Name(), r)
	s.feeds[r.Name()] = f
	s.start(f)
	return nil
}

// start runs f's pump. Called with s.mu held.
func (s *Server) start(f *feed) {
	s.pumps.Add(1)
	go func() {
		defer s.pumps.Done()
		f.run()
	}()
}

// Close stops every ring's reader and ends the requests that wait for
// pictures. Requests after Close get 503.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.pumps.Wait()
	s.index.close()
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// acquire returns the feed of ring name, starting one if needed, and
// marks the ring as watched. With waiting, the ring counts as watched
// until done is called.
func (s *Server) acquire(name string, waiting bool) (f *feed, done func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, errClosed
	}
	f = s.feeds[name]
	if f == nil {
		if len(s.feeds) >= maxFeeds {
			return nil, nil, errTooMany
		}
		f = newFeed(s, name, nil)
		s.feeds[name] = f
		s.start(f)
	}
	f.mu.Lock()
	f.wanted = time.Now()
	if waiting {
		f.active++
	}
	f.mu.Unlock()
	return f, func() {
		if waiting {
			f.mu.Lock()
			f.active--
			f.wanted = time.Now()
			f.mu.Unlock()
		}
	}, nil
}

// retire removes an unwatched feed from the server; false if it was
// watched meanwhile.
func (s *Server) retire(f *feed) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.active > 0 || time.Since(f.wanted) < s.opts.Idle {
		return false
	}
	if s.feeds[f.name] == f {
		delete(s.feeds, f.name)
	}
	f.dead = true
	return true
}

// previewed reports whether ring name has a reader open.
func (s *Server) previewed(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feeds[name]
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.r != nil
}

// noteSeq raises the server's highest picture number to seq, so that a
// feed started later numbers its pictures above every earlier one.
func (s *Server) noteSeq(seq uint64) {
	for {
		cur := s.seqs.Load()
		if seq <= cur || s.seqs.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// await waits for a picture newer than after.
func (s *Server) await(ctx context.Context, f *feed, after uint64, timeout time.Duration) (*shot, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		sh, changed := f.newest(after)
		if sh != nil {
			return sh, nil
		}
		select {
		case <-changed:
		case <-t.C:
			return nil, errTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-f.done:
			return nil, errStopped
		}
	}
}

func (s *Server) routes() {
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	page := func(file string) http.HandlerFunc {
		body, err := fs.ReadFile(static, file)
		if err != nil {
			panic(err)
		}
		return func(w http.ResponseWriter, r *http.Request) {
			if name := r.PathValue("name"); name != "" && ring.CheckName(name) != nil {
				http.Error(w, "invalid ring name", http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			w.Write(body)
		}
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", page("index.html"))
	m.HandleFunc("GET /view/{name}", page("view.html"))
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /api/rings", s.serveIndex)
	m.HandleFunc("GET /api/rings/{name}", s.ringHandler(s.serveStats))
	m.HandleFunc("GET /api/rings/{name}/frame.jpg", s.ringHandler(s.serveFrame))
	m.HandleFunc("GET /api/rings/{name}/stream.mjpg", s.ringHandler(s.serveStream))
	m.HandleFunc("GET /api/rings/{name}/snapshot.png", s.ringHandler(s.serveSnapshot))
	m.HandleFunc("GET /api/rings/{name}/meta", s.ringHandler(s.serveMeta))
	s.mux = m
}

// ringHandler checks the ring name of an /api/rings/{name} request.
func (s *Server) ringHandler(h func(w http.ResponseWriter, r *http.Request, name string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := ring.CheckName(name); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, name)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(v)
}

// httpError answers a request that could not get a feed or a picture.
func httpError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errTimeout):
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, errClosed), errors.Is(err, errTooMany), errors.Is(err, errStopped):
		w.Header().Set("Retry-After", "1")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// the client left
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	idx, err := s.index.list()
	if err != nil {
		http.Error(w, fmt.Sprintf("list rings: %v", err), http.StatusInternalServerError)
		return
	}
	for i := range idx.Rings {
		idx.Rings[i].Previewed = s.previewed(idx.Rings[i].Name)
	}
	writeJSON(w, idx)
}

// RingStats is what GET /api/rings/{name} returns.
type RingStats struct {
	Ring    RingInfo  `json:"ring"`
	Preview FeedStats `json:"preview"`
}

func (s *Server) serveStats(w http.ResponseWriter, r *http.Request, name string) {
	f, done, err := s.acquire(name, false)
	if err != nil {
		httpError(w, err)
		return
	}
	done()
	info, _ := s.index.one(name)
	info.Previewed = s.previewed(name)
	writeJSON(w, RingStats{Ring: info, Preview: f.stats()})
}

// frameHeaders describes sh in response headers.
func frameHeaders(h http.Header, sh *shot) {
	fr := &sh.frame
	h.Set("X-Preview-Seq", strconv.FormatUint(sh.seq, 10))
	h.Set("X-Preview-Base", strconv.FormatUint(sh.base, 10))
	h.Set("X-Frame-Number", strconv.FormatUint(fr.Number, 10))
	h.Set("X-Frame-Size", fmt.Sprintf("%dx%d", fr.Width, fr.Height))
	h.Set("X-Frame-Format", fr.Format.String())
	h.Set("X-Frame-Meta-Len", strconv.Itoa(len(sh.meta)))
	if sh.metaHdr != "" {
		h.Set("X-Frame-Meta", sh.metaHdr)
	}
	h.Set("X-Frame-Age-Ms", strconv.FormatFloat(msf(time.Duration(max(0, ring.Now()-fr.Published))), 'f', 3, 64))
}

// NotImage is what a picture request returns for a frame that is not an
// image: a description and the start of its bytes.
type NotImage struct {
	Frame   uint64 `json:"frame"`
	Format  string `json:"format"`
	Len     int    `json:"len"`
	Why     string `json:"why"`
	HeadHex string `json:"head_hex"` // hex dump of the first 256 bytes
}

func (s *Server) serveFrame(w http.ResponseWriter, r *http.Request, name string) {
	after, _ := strconv.ParseUint(r.FormValue("after"), 10, 64)
	f, done, err := s.acquire(name, true)
	if err != nil {
		httpError(w, err)
		return
	}
	defer done()
	sh, err := s.await(r.Context(), f, after, longPoll)
	if err != nil {
		httpError(w, err)
		return
	}
	frameHeaders(w.Header(), sh)
	if sh.jpeg == nil {
		ni := NotImage{Frame: sh.frame.Number, Format: sh.frame.Format.String(), Len: sh.frame.Len, Why: sh.why}
		if held, _, _ := f.find(sh.frame.Number); held != nil {
			ni.HeadHex = hex.Dump(held.raw[:min(len(held.raw), rawHeadHex)])
			f.release(held)
		}
		w.Header().Set("X-Frame-Not-Image", "1")
		writeJSON(w, ni)
	} else {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Content-Length", strconv.Itoa(len(sh.jpeg)))
		if _, err := w.Write(sh.jpeg); err != nil {
			return
		}
	}
	f.sent(sh, after)
}

const boundary = "framering-frame"

// serveStream sends the pictures as MJPEG (multipart/x-mixed-replace) for
// tools that play such streams; a slow client gets the newest picture
// each time it is ready for one.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, name string) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	f, done, err := s.acquire(name, true)
	if err != nil {
		httpError(w, err)
		return
	}
	defer done()
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
	var after uint64
	for {
		sh, err := s.await(r.Context(), f, after, longPoll)
		if errors.Is(err, errTimeout) {
			continue
		}
		if err != nil {
			return
		}
		prev := after
		after = sh.seq
		if sh.jpeg == nil {
			continue
		}
		if _, err := fmt.Fprintf(w, "--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\nX-Frame-Number: %d\r\n\r\n",
			boundary, len(sh.jpeg), sh.frame.Number); err != nil {
			return
		}
		if _, err := w.Write(sh.jpeg); err != nil {
			return
		}
		if _, err := w.Write([]byte("\r\n")); err != nil {
			return
		}
		fl.Flush()
		f.sent(sh, prev)
	}
}

// held finds the kept shot the request names (?frame=N), or the newest,
// waiting for the frame if the preview has not read that far yet; on
// failure it has answered the request.
func (s *Server) held(w http.ResponseWriter, r *http.Request, f *feed) *shot {
	var n uint64
	if v := r.FormValue("frame"); v != "" {
		var err error
		if n, err = strconv.ParseUint(v, 10, 64); err != nil || n == 0 {
			http.Error(w, errBadFrame.Error(), http.StatusBadRequest)
			return nil
		}
	}
	t := time.NewTimer(longPoll)
	defer t.Stop()
	for {
		sh, newest, changed := f.find(n)
		if sh != nil {
			return sh
		}
		if newest != 0 && newest >= n {
			http.Error(w, fmt.Sprintf("frame %d is no longer held (the preview keeps its last few frames; the newest is %d)", n, newest), http.StatusGone)
			return nil
		}
		select { // the preview has not read that far yet
		case <-changed:
		case <-t.C:
			http.Error(w, fmt.Sprintf("no frame %d yet (the newest is %d)", n, newest), http.StatusServiceUnavailable)
			return nil
		case <-r.Context().Done():
			return nil
		case <-f.done:
			httpError(w, errStopped)
			return nil
		}
	}
}

func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request, name string) {
	f, done, err := s.acquire(name, true)
	if err != nil {
		httpError(w, err)
		return
	}
	defer done()
	sh := s.held(w, r, f)
	if sh == nil {
		return
	}
	fr := sh.frame
	fr.Data = sh.raw
	img, err := fullImage(&fr)
	var out bytes.Buffer
	if err == nil {
		err = png.Encode(&out, img)
	}
	f.release(sh)
	if err != nil {
		http.Error(w, fmt.Sprintf("frame %d: %v", fr.Number, err), http.StatusUnsupportedMediaType)
		return
	}
	frameHeaders(w.Header(), sh)
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("%s-%d.png", name, fr.Number)))
	w.Header().Set("Content-Length", strconv.Itoa(out.Len()))
	w.Write(out.Bytes())
}

func (s *Server) serveMeta(w http.ResponseWriter, r *http.Request, name string) {
	f, done, err := s.acquire(name, true)
	if err != nil {
		httpError(w, err)
		return
	}
	defer done()
	sh := s.held(w, r, f)
	if sh == nil {
		return
	}
	f.release(sh)
	writeJSON(w, describeMeta(sh.frame.Number, sh.meta))
}
