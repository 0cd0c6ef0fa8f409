package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"image/jpeg"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
)

type viewFlags struct {
	ring, dir string
	http      string
	wait      bool
	timeout   time.Duration
	maxFPS    float64
	quality   int
}

var viewOpts viewFlags

var viewCmd = &cobra.Command{
	Use:   "view --ring NAME [--http ADDR]",
	Short: "Watch a ring live: in a browser (--http) or in a window (gocv build)",
	Long: `view shows the newest frames of ring NAME with their fps, latency and drops.

With --http ADDR it serves a page at http://ADDR/ with the live stream as
MJPEG (/stream.mjpg), the newest frame as JPEG (/frame.jpg) and the stats as
JSON (/stats.json), with Go alone. Without --http it opens a window with an
overlay; that needs a build with -tags gocv and a display.

Frames in gray8, gray16, bgr8, rgb8, bgra8, rgba8 and yuyv can be shown.`,
	Example: `  framering view --ring cam0 --http 127.0.0.1:8080
  framering view --ring cam0            # window, gocv build`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		return runView(&viewOpts)
	},
}

func init() {
	f := viewCmd.Flags()
	o := &viewOpts
	f.StringVar(&o.ring, "ring", "", "ring name (required)")
	f.StringVar(&o.dir, "dir", ring.DefaultDir, "shared-memory directory holding the rings")
	f.StringVar(&o.http, "http", "", "serve the live page on `ADDR` (host:port; port 0 picks a free one)")
	f.BoolVar(&o.wait, "wait", false, "wait for the ring to appear instead of failing")
	f.DurationVar(&o.timeout, "timeout", 0, "with --wait: fail if the ring does not appear within this long (0: forever)")
	f.Float64Var(&o.maxFPS, "max-fps", 25, "show at most this many frames per second (the newest one each time)")
	f.IntVar(&o.quality, "quality", 80, "JPEG quality of the stream, 1 to 100")
	root.AddCommand(viewCmd)
}

func runView(o *viewFlags) error {
	if o.ring == "" {
		return usagef("view: --ring NAME is required")
	}
	if err := ring.CheckName(o.ring); err != nil {
		return usagef("view: --ring: %w", err)
	}
	if o.maxFPS <= 0 || o.quality < 1 || o.quality > 100 {
		return usagef("view: --max-fps must be positive and --quality in 1..100")
	}
	ctx, stop := signalContext()
	defer stop()
	ropts := consumer.Options{Dir: o.dir, Mode: consumer.Latest}
	if o.http == "" {
		if !haveGocv {
			return runWindow(ctx, nil, o.ring) // says to use --http or build with gocv
		}
		r, err := openReader(ctx, o.ring, ropts, o.wait, o.timeout)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		defer r.Close()
		return runWindow(ctx, r, o.ring)
	}

	// Bind first: a port in use fails before anything else happens.
	ln, err := net.Listen("tcp", o.http)
	if err != nil {
		return fmt.Errorf("view --http: %w", err)
	}
	h := newHub(o.ring)
	srv := &http.Server{Handler: h.mux(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	defer h.close()
	fmt.Fprintf(os.Stdout, "serving ring %q on http://%s/\n", o.ring, ln.Addr())

	r, err := openReader(ctx, o.ring, ropts, o.wait, o.timeout)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer r.Close()
	return h.pump(ctx, r, o.maxFPS, o.quality)
}

// viewStats is what /stats.json returns.
type viewStats struct {
	Ring   string `json:"ring"`
	State  string `json:"state"` // waiting, streaming, writer gone
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Format string `json:"format"`
	interval
	Error string `json:"error,omitempty"`
}

// hub holds the newest JPEG frame and stats for any number of clients.
type hub struct {
	mu      sync.Mutex
	jpeg    []byte
	seq     uint64
	changed chan struct{} // closed and replaced at each new frame
	done    chan struct{}
	stats   viewStats
}

func newHub(name string) *hub {
	return &hub{changed: make(chan struct{}), done: make(chan struct{}),
		stats: viewStats{Ring: name, State: "waiting", interval: interval{WriterUp: true}}}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
	default:
		close(h.done)
	}
}

func (h *hub) publish(jpg []byte) {
	h.mu.Lock()
	h.jpeg = jpg
	h.seq++
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

func (h *hub) latest() ([]byte, uint64, chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.jpeg, h.seq, h.changed
}

func (h *hub) setStats(fn func(s *viewStats)) {
	h.mu.Lock()
	fn(&h.stats)
	h.mu.Unlock()
}

// pump reads the newest frame at most maxFPS times a second, encodes it
// and hands it to the clients, until ctx ends.
func (h *hub) pump(ctx context.Context, r *consumer.Reader, maxFPS float64, quality int) error {
	buf := make([]byte, r.Geometry().PayloadCap)
	gap := time.Duration(float64(time.Second) / maxFPS)
	sl := newStatsLine(r)
	lastStats := time.Now()
	var enc bytes.Buffer
	for {
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		f, err := r.Read(rctx, buf)
		cancel()
		switch {
		case err == nil:
			img, cerr := frameImage(&f)
			if cerr != nil {
				h.setStats(func(s *viewStats) { s.Error = cerr.Error() })
				break
			}
			enc.Reset()
			if jerr := jpeg.Encode(&enc, img, &jpeg.Options{Quality: quality}); jerr != nil {
				return fmt.Errorf("view: encode frame %d: %w", f.Number, jerr)
			}
			h.publish(bytes.Clone(enc.Bytes()))
			h.setStats(func(s *viewStats) {
				s.State, s.Width, s.Height, s.Format, s.Error = "streaming", f.Width, f.Height, f.Format.String(), ""
			})
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
		case errors.Is(err, ring.ErrWriterGone):
			h.setStats(func(s *viewStats) { s.State, s.Error = "writer gone", err.Error() })
		default:
			return err
		}
		if time.Since(lastStats) >= 500*time.Millisecond {
			iv := sl.next()
			lastStats = time.Now()
			h.setStats(func(s *viewStats) {
				s.interval = iv
				if !iv.WriterUp {
					s.State = "writer gone"
				}
			})
		}
		if d := gap - time.Since(start); d > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
		}
	}
}

func (h *hub) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		pageTmpl.Execute(w, h.stats.Ring)
	})
	m.HandleFunc("GET /stats.json", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		st := h.stats
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(st)
	})
	m.HandleFunc("GET /frame.jpg", func(w http.ResponseWriter, r *http.Request) {
		data, _, _ := h.latest()
		if data == nil {
			http.Error(w, "no frame yet", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(data)
	})
	m.HandleFunc("GET /stream.mjpg", h.stream)
	return m
}

const boundary = "framering-frame"

func (h *hub) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
	w.Header().Set("Cache-Control", "no-store")
	var last uint64
	for {
		data, seq, changed := h.latest()
		if data != nil && seq != last {
			last = seq
			if _, err := fmt.Fprintf(w, "--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", boundary, len(data)); err != nil {
				return
			}
			if _, err := w.Write(data); err != nil {
				return
			}
			if _, err := w.Write([]byte("\r\n")); err != nil {
				return
			}
			fl.Flush()
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		}
	}
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>framering view: {{.}}</title>
<style>
body{margin:0;background:#111;color:#eee;font:14px/1.4 monospace}
#wrap{position:relative;display:inline-block}
#stream{display:block;max-width:100vw;max-height:100vh;image-rendering:pixelated}
#overlay{position:absolute;left:8px;top:8px;background:rgba(0,0,0,.6);padding:4px 8px;border-radius:4px;white-space:pre}
</style></head>
<body>
<div id="wrap"><img id="stream" src="stream.mjpg" alt="ring {{.}}">
<div id="overlay"><span id="state" data-state="waiting">waiting for frames</span>
<span id="stats"></span></div></div>
<script>
(function(){
  const img = document.getElementById('stream');
  const state = document.getElementById('state');
  const stats = document.getElementById('stats');
  let shown = false;
  function check(){
    if (!shown && img.complete !== undefined && img.naturalWidth > 0) {
      shown = true;
      state.dataset.state = 'streaming';
      state.dataset.width = img.naturalWidth;
      state.dataset.height = img.naturalHeight;
      state.textContent = 'streaming ' + img.naturalWidth + 'x' + img.naturalHeight;
      document.title = 'framering view: {{.}} (streaming)';
    }
  }
  img.addEventListener('load', check);
  setInterval(check, 100);
  async function poll(){
    try {
      const r = await fetch('stats.json', {cache: 'no-store'});
      const s = await r.json();
      stats.textContent = 'ring ' + s.ring + ' ' + s.state + ' ' + s.width + 'x' + s.height + ' ' + s.format +
        '\nframe ' + s.frame + '  ' + s.fps.toFixed(1) + ' fps shown, ' + s.ring_fps.toFixed(1) + ' fps published' +
        '\nlatency p50 ' + s.p50_us.toFixed(0) + ' µs  p99 ' + s.p99_us.toFixed(0) + ' µs  dropped ' + s.dropped +
        (s.error ? '\n' + s.error : '');
    } catch (e) { stats.textContent = 'stats unavailable: ' + e; }
  }
  poll();
  setInterval(poll, 500);
})();
</script>
</body></html>
`))
