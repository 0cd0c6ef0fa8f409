package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Machine names the host a run measured.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go"`
	OSArch    string `json:"os_arch"`
	// LoadStart and LoadEnd are /proc/loadavg (1, 5, 15 min) before and
	// after the run: the machine may be shared.
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end,omitempty"`
}

// ThisMachine reads the CPU model (/proc/cpuinfo), core count, kernel
// release and load average.
func ThisMachine() Machine {
	m := Machine{
		CPU:       cpuModel(),
		Cores:     runtime.NumCPU(),
		Kernel:    firstLine("/proc/sys/kernel/osrelease"),
		GoVersion: runtime.Version(),
		OSArch:    runtime.GOOS + "/" + runtime.GOARCH,
		LoadStart: LoadAvg(),
	}
	return m
}

// LoadAvg is the 1, 5 and 15 minute load averages, or "?".
func LoadAvg() string {
	f := strings.Fields(firstLine("/proc/loadavg"))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	l, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(l)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		k = strings.TrimSpace(k)
		if ok && (k == "model name" || k == "Hardware" || k == "cpu model") {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// Report is a whole run: what ran where, every result, and the ratios.
type Report struct {
	Machine Machine   `json:"machine"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Quick   bool      `json:"quick"`
	Results []Result  `json:"results"`
	Ratios  []Ratio   `json:"ratios"`
	Goals   []Goal    `json:"goals"`
}

// Failed lists the names of the cases that did not run to the end
// (skipped cases are not failures).
func (r *Report) Failed() []string {
	var out []string
	for _, res := range r.Results {
		if res.Err != "" {
			out = append(out, res.Name+": "+res.Err)
		}
	}
	return out
}

// SkippedWhy lists, once each, why cases were skipped.
func (r *Report) SkippedWhy() []string {
	var out []string
	seen := map[string]bool{}
	for _, res := range r.Results {
		if res.Skipped != "" && !seen[res.Skipped] {
			seen[res.Skipped] = true
			out = append(out, res.Skipped)
		}
	}
	return out
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadReport parses a report WriteJSON wrote.
func ReadReport(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("bench report: %w", err)
	}
	return &r, nil
}

// Duration formats ns the way the tables do: 850ns, 12.3µs, 1.05ms.
func Duration(ns int64) string {
	switch {
	case ns <= 0:
		return "-"
	case ns < 1_000:
		return fmt.Sprintf("%dns", ns)
	case ns < 10_000:
		return fmt.Sprintf("%.2fµs", float64(ns)/1e3)
	case ns < 1_000_000:
		return fmt.Sprintf("%.1fµs", float64(ns)/1e3)
	case ns < 10_000_000:
		return fmt.Sprintf("%.2fms", float64(ns)/1e6)
	}
	return fmt.Sprintf("%.1fms", float64(ns)/1e6)
}

func header(r *Report) []string {
	m := r.Machine
	mode := "full"
	if r.Quick {
		mode = "quick"
	}
	lines := []string{
		fmt.Sprintf("machine: %s, %d cores, %s, Linux %s, %s", m.CPU, m.Cores, m.OSArch, m.Kernel, m.GoVersion),
		fmt.Sprintf("load average (1/5/15 min): %s at start, %s at end", m.LoadStart, m.LoadEnd),
		fmt.Sprintf("run: %s (%s suite, %d cases, %.0f s), %s", r.Command, mode, len(r.Results), r.Seconds, r.Started.UTC().Format(time.RFC3339)),
	}
	return lines
}

// rows are the section's results.
func (s section) rows(r *Report) []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Kind == s.kind && (s.keep == nil || s.keep(res)) {
			out = append(out, res)
		}
	}
	return out
}

// goalSummary counts the goals by status.
func goalSummary(gs []Goal) string {
	var met, missed, not int
	for _, g := range gs {
		switch g.Status() {
		case "MET":
			met++
		case "MISSED":
			missed++
		default:
			not++
		}
	}
	return fmt.Sprintf("%d met, %d missed, %d not judged by this run", met, missed, not)
}

func cpuCell(res Result) string {
	s := fmt.Sprintf("%.2f", res.WriterCPU)
	if len(res.ReaderCPU) > 0 {
		s += "/" + fmt.Sprintf("%.2f", Mean(res.ReaderCPU))
	}
	return s
}

type column struct {
	head string
	cell func(Result) string
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

func schedCell(f func(*SchedStats) string) func(Result) string {
	return func(r Result) string {
		if r.Sched == nil {
			return "-"
		}
		return f(r.Sched)
	}
}

// schedDur is Duration, with 0 shown as 0 (no wait at all) rather than
// "-" (nothing measured).
func schedDur(ns int64) string {
	if ns == 0 {
		return "0"
	}
	return Duration(ns)
}

func copyCell(method string) column {
	return column{method, func(r Result) string {
		for _, c := range r.Copy {
			if c.Method == method {
				return fmt.Sprintf("%s (%.2f GB/s)", Duration(c.Time.P50), c.GBps)
			}
		}
		return "-"
	}}
}

func firstCell(f func(*FirstFrames) int64) func(Result) string {
	return func(r Result) string {
		if r.First == nil {
			return "-"
		}
		return Duration(f(r.First))
	}
}

var (
	colTransport = column{"transport", func(r Result) string { return string(r.Transport) }}
	colWait      = column{"wait", func(r Result) string {
		if r.Pin {
			return string(r.Wait) + ", pinned"
		}
		return string(r.Wait)
	}}
	colSize      = column{"size", func(r Result) string { return r.Shape.String() }}
	colReaders   = column{"readers", func(r Result) string { return fmt.Sprint(r.Readers) }}
	colP50       = column{"p50", func(r Result) string { return Duration(r.Latency.P50) }}
	colP99       = column{"p99", func(r Result) string { return Duration(r.Latency.P99) }}
	colMax       = column{"max", func(r Result) string { return Duration(r.Latency.Max) }}
	colSchedP50  = column{"sched p50", schedCell(func(s *SchedStats) string { return schedDur(s.P50) })}
	colContended = column{"contended", schedCell(func(s *SchedStats) string { return pct(s.Contended) })}
	colUncP50    = column{"p50 uncontended", schedCell(func(s *SchedStats) string { return Duration(s.UncontendedP50) })}
	colFirstMax  = column{"first 8 max", firstCell(func(f *FirstFrames) int64 { return f.LatencySlotsMax })}
	colFPS       = column{"frames/s", func(r Result) string { return fmt.Sprintf("%.0f", r.FPS) }}
	colGBps      = column{"GB/s", func(r Result) string { return fmt.Sprintf("%.2f", r.GBps) }}
	colCPU       = column{"CPU s w/r", cpuCell}
	colFrames    = column{"frames", func(r Result) string { return fmt.Sprint(r.Frames) }}
	colDelivered = column{"frames", func(r Result) string { return fmt.Sprint(r.Delivered) }}
	colDropped   = column{"dropped", func(r Result) string { return fmt.Sprint(r.Dropped) }}
	colTorn      = column{"torn", func(r Result) string { return fmt.Sprint(r.Torn) }}
	colErr       = column{"error", func(r Result) string { return r.Err }}
	colOpen      = column{"ring created", firstCell(func(f *FirstFrames) int64 { return f.OpenNs })}
	colPub1      = column{"publish #1", firstCell(func(f *FirstFrames) int64 { return f.Publish1 })}
	colPubSlots  = column{"#1-8 p50", firstCell(func(f *FirstFrames) int64 { return f.PublishSlotsP50 })}
	colPubSteady = column{"steady p50", firstCell(func(f *FirstFrames) int64 { return f.PublishSteady })}
	colPubRatio  = column{"#1 ÷ steady", func(r Result) string {
		if r.First == nil || r.First.PublishSteady == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", Div(float64(r.First.Publish1), float64(r.First.PublishSteady)))
	}}
	colLat1     = column{"latency #1", firstCell(func(f *FirstFrames) int64 { return f.Latency1 })}
	colIdleSecs = column{"seconds", func(r Result) string {
		if r.Idle == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f", r.Idle.Seconds)
	}}
	colIdleCPU = column{"CPU % of a core", func(r Result) string {
		if r.Idle == nil {
			return "-"
		}
		return fmt.Sprintf("%.3f", r.Idle.CPUPercent)
	}}
	colIdleWake = column{"wake-ups/s", func(r Result) string {
		if r.Idle == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f", r.Idle.WakeupsPerSec)
	}}
)

type section struct {
	title string
	kind  Kind
	cols  []column
	note  string
	// keep, if set, picks the section's rows among the kind's results.
	keep func(Result) bool
}

var sections = []section{
	{"One-way latency (paced: readers idle 1-3 ms before each frame)", Latency,
		[]column{colTransport, colWait, colSize, colReaders, colP50, colP99, colMax, colSchedP50, colContended, colUncP50, colFirstMax, colFrames, colDropped, colTorn, colCPU},
		"publish start (writer's CLOCK_MONOTONIC) to the frame usable by the reader, over all readers, frames after each slot's first use; " +
			"sched: the reader's run-queue wait while it waited (schedstat), contended: frames with ≥ 5µs of it", nil},
	{"First frames of a fresh ring (latency cases)", Latency,
		[]column{colTransport, colWait, colSize, colReaders, colOpen, colPub1, colPubSlots, colPubSteady, colPubRatio, colLat1, colFirstMax},
		"the writer's time to put a frame in (view: Reserve, fill, Commit; copy: Publish) for frame 1, frames 1-8 (each slot's first use) and the frames after; " +
			"the readers' latency of frame 1 and the worst of frames 1-8",
		func(r Result) bool { return r.Transport.ring() && r.First != nil && r.First.PublishSteady > 0 }},
	{"Ping-pong latency (round trip / 2, back to back)", PingPong,
		[]column{colTransport, colWait, colSize, colP50, colP99, colMax, colSchedP50, colContended, colFPS, colTorn, colCPU},
		"framering-view: zero-copy (a loan with only the header written, a view); framering-copy: Publish in, Read out, each way; " +
			"frames/s here is round trips per second; sched is the pinger's over the round trip", nil},
	{"Throughput (writer flat out)", Throughput,
		[]column{colTransport, colWait, colSize, colReaders, colFPS, colGBps, colP50, colP99, colFrames, colDropped, colTorn, colCPU},
		"frames/s and GB/s per reader (mean over readers); latency here is frame age under load", nil},
	{"Copy-out (paced; median time of one frame's copy, the slot just written by the writer on another CPU)", CopyOut,
		[]column{colTransport, colSize, copyCell(MethodRead), copyCell(MethodGoCopy), copyCell(MethodGlibc), copyCell(MethodNumpy), colDelivered, colTorn},
		"read: the library's copy-out read; go-copy: Go's copy of the slot through a view; glibc-memcpy: the C reader's memcpy of the slot through a view; " +
			"numpy-copy: numpy.copyto of the slot through a Python view", nil},
	{"Idle (a reader blocked on a ring whose writer publishes nothing)", Idle,
		[]column{colTransport, colIdleSecs, colIdleCPU, colIdleWake},
		"getrusage over the window: CPU time and context switches, all threads of the reader's process", nil},
}

func cellsOf(cols []column, res Result) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.cell(res)
	}
	return out
}

// WriteTable writes the report as plain-text tables for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, l := range header(r) {
		fmt.Fprintln(bw, l)
	}
	for _, s := range sections {
		res := s.rows(r)
		if len(res) == 0 {
			continue
		}
		fmt.Fprintf(bw, "\n%s\n  (%s)\n", s.title, s.note)
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
		var head []string
		for _, c := range s.cols {
			head = append(head, c.head)
		}
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		for _, res := range res {
			if res.Err != "" {
				fmt.Fprintf(tw, "%s\t%s\t%s\tFAILED: %s\t\n", res.Transport, res.Wait, res.Shape, oneLine(res.Err))
				continue
			}
			if res.Skipped != "" {
				fmt.Fprintf(tw, "%s\t%s\t%s\tskipped (see below)\t\n", res.Transport, res.Wait, res.Shape)
				continue
			}
			fmt.Fprintln(tw, strings.Join(cellsOf(s.cols, res), "\t")+"\t")
		}
		tw.Flush()
	}
	fmt.Fprintln(bw, "\nRatios")
	for _, ra := range r.Ratios {
		fmt.Fprintf(bw, "  %-52s %s\n", ra.Name, ra.Text())
	}
	if why := r.SkippedWhy(); len(why) > 0 {
		fmt.Fprintln(bw, "\nSkipped")
		for _, w := range why {
			fmt.Fprintf(bw, "  %s\n", w)
		}
	}
	fmt.Fprintf(bw, "\nGoals (%s)\n", goalSummary(r.Goals))
	for _, g := range r.Goals {
		fmt.Fprintf(bw, "  %-6s %-70s %s (target %s)\n", g.Status(), g.Name, g.MeasuredText(), g.Target)
	}
	return bw.Flush()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// WriteMarkdown writes the report as markdown: header, goals, skipped
// cases, ratios and a table per section.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# framering benchmark results")
	fmt.Fprintln(bw)
	for _, l := range header(r) {
		fmt.Fprintf(bw, "- %s\n", mdEscape(l))
	}
	fmt.Fprintf(bw, "\n## Goals\n\n%s.\n\n", goalSummary(r.Goals))
	fmt.Fprintln(bw, "| goal | target | measured | status |")
	fmt.Fprintln(bw, "|---|---|---|---|")
	for _, g := range r.Goals {
		fmt.Fprintf(bw, "| %s | %s | %s | %s |\n", mdEscape(g.Name), mdEscape(g.Target), mdEscape(g.MeasuredText()), g.Status())
	}
	if why := r.SkippedWhy(); len(why) > 0 {
		fmt.Fprintln(bw, "\n## Skipped")
		fmt.Fprintln(bw)
		for _, w := range why {
			fmt.Fprintf(bw, "- %s\n", mdEscape(w))
		}
	}
	fmt.Fprintln(bw, "\n## Ratios")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| ratio | value |")
	fmt.Fprintln(bw, "|---|---|")
	for _, ra := range r.Ratios {
		fmt.Fprintf(bw, "| %s | %s |\n", mdEscape(ra.Name), mdEscape(ra.Text()))
	}
	for _, s := range sections {
		res := s.rows(r)
		if len(res) == 0 {
			continue
		}
		fmt.Fprintf(bw, "\n## %s\n\n%s.\n\n", s.title, strings.ToUpper(s.note[:1])+s.note[1:])
		var head, rule []string
		for _, c := range s.cols {
			head = append(head, c.head)
			rule = append(rule, "---")
		}
		head = append(head, colErr.head)
		rule = append(rule, "---")
		fmt.Fprintf(bw, "| %s |\n|%s|\n", strings.Join(head, " | "), strings.Join(rule, "|"))
		for _, res := range res {
			why := res.Err
			if res.Skipped != "" {
				why = "skipped: " + res.Skipped
			}
			cells := append(cellsOf(s.cols, res), oneLine(why))
			for i := range cells {
				cells[i] = mdEscape(cells[i])
			}
			fmt.Fprintf(bw, "| %s |\n", strings.Join(cells, " | "))
		}
	}
	return bw.Flush()
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// NewReport builds a report from results: ratios and goals included. The
// caller fills in Machine (see ThisMachine), Command and timing.
func NewReport(results []Result) *Report {
	r := &Report{Results: results}
	r.Ratios, r.Goals = Analyze(results)
	return r
}

// WriteFiles writes results.json, results.md and the plots into dir
// (created if needed) and returns the names of the files written.
func (r *Report) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results directory: %w", err)
	}
	var files []string
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{"results.json", r.WriteJSON}, {"results.md", r.WriteMarkdown}} {
		path := filepath.Join(dir, f.name)
		out, err := os.Create(path)
		if err != nil {
			return files, fmt.Errorf("results: %w", err)
		}
		err = f.write(out)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return files, fmt.Errorf("results %s: %w", path, err)
		}
		files = append(files, f.name)
	}
	plots, err := WritePlots(dir, r.Results)
	return append(files, plots...), err
}
