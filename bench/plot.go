package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot files WriteFiles draws.
const (
	PlotCDF        = "latency-cdf.png"
	PlotP50        = "latency-p50-vs-size.png"
	PlotThroughput = "throughput-vs-size.png"
)

// series is a named line.
type series struct {
	name string
	xy   plotter.XYs
}

// lineKey is a transport with a wait mode: one line per key.
type lineKey struct {
	t Transport
	w Wait
}

func (k lineKey) String() string {
	if k.w == DefaultWait(k.t) {
		return string(k.t)
	}
	return string(k.t) + " " + string(k.w)
}

// keysOf lists the (transport, wait) pairs of kind k with 1 reader, in
// report order.
func keysOf(rs []Result, k Kind) []lineKey {
	var out []lineKey
	for _, t := range AllTransports {
		for _, w := range Waits(t) {
			for _, r := range rs {
				if r.ok() && r.Kind == k && r.Transport == t && r.Wait == w && r.Readers == 1 {
					out = append(out, lineKey{t, w})
					break
				}
			}
		}
	}
	return out
}

// cdfShape is the size the CDF plot shows: 1080p when measured, else the
// largest size with latency results.
func cdfShape(rs []Result) (Shape, bool) {
	var best Shape
	found := false
	for _, r := range rs {
		if !r.ok() || r.Kind != Latency || r.Readers != 1 {
			continue
		}
		if r.Shape == Shape1080 {
			return r.Shape, true
		}
		if !found || r.Shape.Bytes() > best.Bytes() {
			best, found = r.Shape, true
		}
	}
	return best, found
}

// WritePlots draws the PNG plots into dir: latency CDF per transport at
// 1080p, p50 latency against frame size, throughput against frame size
// (log scales). It draws only the plots the results have data for and
// returns the files written.
func WritePlots(dir string, rs []Result) ([]string, error) {
	var files []string
	if s, ok := cdfShape(rs); ok {
		var lines []series
		for _, k := range keysOf(rs, Latency) {
			r := findAny(rs, Latency, k.t, k.w, s, 1)
			if r == nil || len(r.CDF) == 0 {
				continue
			}
			var xy plotter.XYs
			for _, p := range r.CDF {
				if p.V > 0 {
					xy = append(xy, plotter.XY{X: float64(p.V) / 1e3, Y: p.F})
				}
			}
			lines = append(lines, series{k.String(), xy})
		}
		p := newPlot(fmt.Sprintf("One-way latency CDF, %s, 1 reader", s), "latency (µs, log)", "fraction of frames")
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		p.Y.Min, p.Y.Max = 0, 1
		p.Legend.Top, p.Legend.Left = false, false // the lines end top right
		if err := save(p, lines, false, filepath.Join(dir, PlotCDF)); err != nil {
			return files, err
		}
		files = append(files, PlotCDF)
	}
	bySize := func(k Kind, title, ylabel, file string, legendLeft bool, y func(*Result) float64) error {
		var lines []series
		for _, key := range keysOf(rs, k) {
			var xy plotter.XYs
			for _, s := range shapesOf(rs) {
				if r := findAny(rs, k, key.t, key.w, s, 1); r != nil && y(r) > 0 {
					xy = append(xy, plotter.XY{X: float64(s.Bytes()) / 1e6, Y: y(r)})
				}
			}
			if len(xy) > 0 {
				lines = append(lines, series{key.String(), xy})
			}
		}
		if len(lines) == 0 {
			return nil
		}
		p := newPlot(title, "frame size (MB, log)", ylabel)
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		p.Legend.Left = legendLeft
		if err := save(p, lines, true, filepath.Join(dir, file)); err != nil {
			return err
		}
		files = append(files, file)
		return nil
	}
	if err := bySize(Latency, "One-way latency p50 against frame size, 1 reader", "p50 latency (µs, log)", PlotP50, true,
		func(r *Result) float64 { return float64(r.Latency.P50) / 1e3 }); err != nil {
		return files, err
	}
	if err := bySize(Throughput, "Throughput against frame size, 1 reader", "GB/s per reader (log)", PlotThroughput, false,
		func(r *Result) float64 { return r.GBps }); err != nil {
		return files, err
	}
	return files, nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

func save(p *plot.Plot, lines []series, points bool, path string) error {
	for i, s := range lines {
		l, err := plotter.NewLine(s.xy)
		if err != nil {
			return fmt.Errorf("plot %s: %w", filepath.Base(path), err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / 7)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.name, l)
		if points {
			sc, err := plotter.NewScatter(s.xy)
			if err != nil {
				return fmt.Errorf("plot %s: %w", filepath.Base(path), err)
			}
			sc.Color = plotutil.Color(i)
			sc.Shape = plotutil.Shape(i)
			p.Add(sc)
		}
	}
	padLog(&p.X)
	padLog(&p.Y)
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("plot %s: %w", filepath.Base(path), err)
	}
	return nil
}

// padLog widens a log axis whose data span a single value (one frame
// size, one latency): gonum's log scale divides by log(Max/Min), and
// drawing such an axis panics. It also keeps Min positive.
func padLog(a *plot.Axis) {
	if _, ok := a.Scale.(plot.LogScale); !ok {
		return
	}
	if a.Min <= 0 {
		a.Min = math.Min(1e-3, a.Max/10)
	}
	if a.Max <= a.Min {
		a.Min, a.Max = a.Min/2, a.Min*2
	}
	if a.Max < a.Min*1.5 {
		a.Min, a.Max = a.Min/1.25, a.Max*1.25
	}
}
