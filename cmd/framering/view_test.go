package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/headless"
	"github.com/framering/framering/internal/testutil"
)

// getJSON decodes the JSON at url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestViewHTTP serves the monitor with view --http --ring, over a ring an
// image is sent into and a finished one: the ring's picture has the
// image's colours, its snapshot is the image pixel for pixel, the index
// lists both rings; then both pages load in headless Chromium.
func TestViewHTTP(t *testing.T) {
	dir := testutil.ShmDir(t)
	live, done := testutil.Name(t)+"-live", testutil.Name(t)+"-done"
	in := filepath.Join(t.TempDir(), "in.png")
	want := writeTestImage(t, in, 64, 48)
	if res := cli(t, "send", "--ring", done, "--dir", dir, "--pattern", "20x10x3", "--count", "3", "--fps", "0", "-q"); res.code != 0 {
		t.Fatalf("send: %d\n%s", res.code, res.stderr)
	}
	send := start(t, "send", "--ring", live, "--dir", dir, "--image", in, "--fps", "30", "-q")
	defer func() { send.Cmd.Process.Signal(syscall.SIGTERM); finish(t, send) }()
	view := start(t, "view", "--ring", live, "--dir", dir, "--wait", "--http", "127.0.0.1:0")
	defer func() {
		view.Cmd.Process.Signal(syscall.SIGTERM)
		if res := finish(t, view); res.code != 0 {
			t.Errorf("view after SIGTERM: exit %d\n%s", res.code, res.stderr)
		}
	}()
	line, err := view.Expect("serving ring", shortWait)
	if err != nil {
		t.Fatal(err)
	}
	// serving ring "NAME" on http://ADDR/view/NAME (every ring: http://ADDR/)
	page := strings.Fields(line[strings.Index(line, "http://"):])[0]
	base := strings.TrimSuffix(line[strings.LastIndex(line, "http://"):], ")")
	if page != base+"view/"+live {
		t.Fatalf("addresses in %q: page %q, index %q", line, page, base)
	}
	api := base + "api/rings/" + live

	var st struct {
		Preview struct {
			State string `json:"state"`
			Frame *struct {
				Width, Height int
				Format        string
			} `json:"frame"`
		} `json:"preview"`
	}
	deadline := time.Now().Add(shortWait)
	for st.Preview.Frame == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no frame read: %+v\nview stderr:\n%s", st, view.Stderr())
		}
		time.Sleep(50 * time.Millisecond)
		getJSON(t, api, &st)
	}
	if f := st.Preview.Frame; f.Width != 64 || f.Height != 48 || f.Format != "bgr8" || st.Preview.State != "streaming" {
		t.Errorf("stats: %s %+v, want streaming 64x48 bgr8", st.Preview.State, *f)
	}

	resp, err := http.Get(api + "/frame.jpg")
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("frame.jpg: %v", err)
	}
	// Top left is red, top right green, bottom left blue: checks the
	// BGR -> RGB conversion of the picture.
	for _, p := range []struct {
		x, y    int
		r, g, b bool
	}{{8, 8, true, false, false}, {56, 8, false, true, false}, {8, 40, false, false, true}} {
		r, g, b, _ := img.At(p.x, p.y).RGBA()
		if (r>>8 > 180) != p.r || (g>>8 > 180) != p.g || (b>>8 > 180) != p.b {
			t.Errorf("frame.jpg pixel (%d,%d) = %d,%d,%d; want r %v g %v b %v", p.x, p.y, r>>8, g>>8, b>>8, p.r, p.g, p.b)
		}
	}
	// The snapshot: PNG -> bgr8 in the ring -> PNG, exact.
	resp, err = http.Get(api + "/snapshot.png")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := png.Decode(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("snapshot.png: %v", err)
	}
	if snap.Bounds() != want.Bounds() {
		t.Fatalf("snapshot %v, sent %v", snap.Bounds(), want.Bounds())
	}
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			if g, w := color.NRGBAModel.Convert(snap.At(x, y)), want.NRGBAAt(x, y); g != w {
				t.Fatalf("snapshot pixel (%d,%d) = %v, sent %v", x, y, g, w)
			}
		}
	}

	var idx struct {
		Rings []struct {
			Name, State, Format string
			Width, Height       int
		}
	}
	getJSON(t, base+"api/rings", &idx)
	got := map[string]string{}
	for _, r := range idx.Rings {
		got[r.Name] = fmt.Sprintf("%s %s %dx%d", r.State, r.Format, r.Width, r.Height)
	}
	if got[live] != "alive bgr8 64x48" || got[done] != "gone bgr8 20x10" || len(got) != 2 {
		t.Errorf("index: %v", got)
	}

	path := headless.Find()
	if path == "" {
		t.Skip("chromium is not installed (apt-get install chromium): the pages were not checked in a browser")
	}
	ctx, cancel := context.WithTimeout(context.Background(), longWait) // hang guard
	defer cancel()
	b, err := headless.Start(ctx, path, t.TempDir(), 1024, 768)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Navigate(ctx, page); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx, `+document.getElementById('picture').dataset.frame > 0 && document.getElementById('picture').naturalWidth === 64 &&
		document.body.dataset.state === 'streaming'`); err != nil {
		t.Fatalf("%v\nchromium stderr:\n%s", err, b.Stderr())
	}
	if err := b.Navigate(ctx, base); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx, `document.querySelector('#rings tr[data-ring="`+live+`"][data-width="64"]') &&
		document.querySelector('#rings tr[data-ring="`+done+`"][data-state="gone"]')`); err != nil {
		t.Fatal(err)
	}
}

// TestViewIndexOnly serves the monitor without --ring, and fails on a
// missing --ring without --wait.
func TestViewIndexOnly(t *testing.T) {
	dir := testutil.ShmDir(t)
	view := start(t, "view", "--dir", dir, "--http", "127.0.0.1:0")
	line, err := view.Expect("serving the rings in "+dir, shortWait)
	if err != nil {
		t.Fatal(err)
	}
	var idx struct{ Dir string }
	getJSON(t, line[strings.Index(line, "http://"):]+"api/rings", &idx)
	view.Cmd.Process.Signal(syscall.SIGTERM)
	if res := finish(t, view); res.code != 0 || idx.Dir != dir {
		t.Errorf("view: exit %d, index of %q\n%s", res.code, idx.Dir, res.stderr)
	}

	res := cli(t, "view", "--dir", dir, "--http", "127.0.0.1:0", "--ring", "nothere")
	if res.code != 1 || !strings.Contains(res.stderr, "does not exist") || strings.Contains(res.stdout, "serving") {
		t.Errorf("view of a missing ring: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
}
