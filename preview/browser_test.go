package preview_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/internal/headless"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/preview"
	"github.com/framering/framering/ring"
)

// screenshotDir, if set, receives the screenshots of TestPageInChromium
// (index.png, view.png): FRAMERING_PREVIEW_SCREENSHOTS=/tmp/shots.
const screenshotEnv = "FRAMERING_PREVIEW_SCREENSHOTS"

func startBrowser(t *testing.T, ctx context.Context) *headless.Browser {
	t.Helper()
	path := headless.Find()
	if path == "" {
		t.Skip("chromium is not installed (apt-get install chromium): the pages were not checked in a browser")
	}
	b, err := headless.Start(ctx, path, t.TempDir(), 1280, 960)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("chromium: %v\n%s", err, b.Stderr())
		}
	})
	return b
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func saveShot(t *testing.T, name string, b []byte) {
	if dir := os.Getenv(screenshotEnv); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Error(err)
		}
	}
}

type rect struct{ X, Y, W, H float64 }

// TestPageInChromium loads the index and a ring's page in headless
// Chromium: the index lists the test's rings with their geometry, the live
// picture changes between two screenshots a few frames apart, the counters
// and the metadata are shown, pause holds the picture while the preview
// goes on reading, and a raw ring shows the "not an image" panel.
func TestPageInChromium(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // hang guard
	defer cancel()
	b := startBrowser(t, ctx)
	dir := testutil.ShmDir(t)
	base := testutil.Name(t)
	live := cardWriter(t, dir, base+"-live", ring.FrameInfo{Width: 160, Height: 120, Format: ring.BGR8})
	live.run(t, 33*time.Millisecond)
	still := cardWriter(t, dir, base+"-still", ring.FrameInfo{Width: 64, Height: 48, Format: ring.Gray8})
	still.publish(t)
	raw := newWriter(t, dir, base+"-raw", ring.FrameInfo{Format: ring.Raw, Len: 300, Width: 1, Height: 1}, randomFrame)
	raw.publish(t)
	_, hs := serve(t, preview.Options{Dir: dir})

	// The index.
	if err := b.Navigate(ctx, hs.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx, `document.querySelectorAll('#rings tbody tr').length === 3 &&
		!/–/.test(document.querySelector('#rings tr[data-ring$="-live"] [data-key=rate]').textContent)`); err != nil {
		t.Fatal(err)
	}
	var rows []struct{ Ring, State, Width, Height, Format, Shape, Rate, Link string }
	if err := b.Eval(ctx, `[...document.querySelectorAll('#rings tbody tr')].map(tr => ({
		ring: tr.dataset.ring, state: tr.dataset.state, width: tr.dataset.width, height: tr.dataset.height,
		format: tr.dataset.format, shape: tr.querySelector('[data-key=shape]').textContent,
		rate: tr.querySelector('[data-key=rate]').textContent, link: tr.querySelector('a').getAttribute('href')}))`, &rows); err != nil {
		t.Fatal(err)
	}
	want := map[string][4]string{base + "-live": {"160", "120", "bgr8", "160x120x3"}, base + "-still": {"64", "48", "gray8", "64x48x1"}, base + "-raw": {"1", "1", "raw", "300 B"}}
	for _, r := range rows {
		w, ok := want[r.Ring]
		if !ok || r.Width != w[0] || r.Height != w[1] || r.Format != w[2] || r.Shape != w[3] || r.State != "alive" || r.Link != "view/"+r.Ring {
			t.Errorf("index row %+v, want %v", r, w)
		}
		delete(want, r.Ring)
		if strings.HasSuffix(r.Ring, "-live") && !regexp.MustCompile(`^[1-9][0-9.]*/s$`).MatchString(r.Rate) {
			t.Errorf("live ring's rate %q", r.Rate)
		}
	}
	if len(want) > 0 {
		t.Errorf("the index lacks %v", want)
	}
	if shot, err := b.Screenshot(ctx); err == nil {
		saveShot(t, "index.png", shot)
	}

	// The live ring's page.
	if err := b.Navigate(ctx, hs.URL+"/view/"+base+"-live"); err != nil {
		t.Fatal(err)
	}
	frameNo := func() int {
		var n string
		if err := b.Eval(ctx, `document.getElementById('picture').dataset.frame || '0'`, &n); err != nil {
			t.Fatal(err)
		}
		v, _ := strconv.Atoi(n)
		return v
	}
	if err := b.Wait(ctx, `+document.getElementById('picture').dataset.frame > 0 && document.body.dataset.stats === 'true'`); err != nil {
		t.Fatal(err)
	}
	n1 := frameNo()
	shot1, err := b.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx, `+document.getElementById('picture').dataset.frame >= `+strconv.Itoa(n1+3)); err != nil {
		t.Fatal(err)
	}
	// Let the metadata and a stats poll catch up, then the second shot.
	if err := b.Wait(ctx, `document.getElementById('meta-kind').textContent.startsWith('json')`); err != nil {
		t.Fatal(err)
	}
	// The stats are polled once a second: the first poll can come before
	// the preview's first read.
	if err := b.Wait(ctx, `/^[1-9]/.test((document.querySelector('#counters [data-key=read]') || {}).textContent || '')`); err != nil {
		t.Fatal(err)
	}
	n2 := frameNo()
	shot2, err := b.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	saveShot(t, "view.png", shot2)

	// Where the picture is on screen: scaled to fit the stage.
	var geo struct {
		Stage        rect
		NatW, NatH   int
		ClientW      float64
		ClientH      float64
		Pixelated    bool
		MetaText     string
		CounterTexts map[string]string
	}
	// The page sets the picture's src for every frame: while the next one
	// loads, naturalWidth is 0. Look again (a bounded number of times)
	// until a picture is loaded.
	for try := 0; try < 200 && geo.NatW == 0; try++ {
		if err := b.Eval(ctx, `(() => {
			const img = document.getElementById('picture'), r = document.getElementById('stage').getBoundingClientRect();
			const texts = {};
			for (const td of document.querySelectorAll('#counters [data-key]')) texts[td.dataset.key] = td.textContent;
			return {stage: {x: r.x, y: r.y, w: r.width, h: r.height}, natW: img.naturalWidth, natH: img.naturalHeight,
				clientW: img.clientWidth, clientH: img.clientHeight, pixelated: img.classList.contains('pixelated'),
				metaText: document.getElementById('meta').textContent, counterTexts: texts};
		})()`, &geo); err != nil {
			t.Fatal(err)
		}
	}
	if geo.NatW != 160 || geo.NatH != 120 {
		t.Errorf("picture %dx%d, want 160x120", geo.NatW, geo.NatH)
	}
	scale := min(geo.Stage.W/160, geo.Stage.H/120)
	if scale < 2 || !geo.Pixelated {
		t.Errorf("the 160x120 picture is shown at %.2fx in a %.0fx%.0f stage (pixelated %v): not scaled to the window", scale, geo.Stage.W, geo.Stage.H, geo.Pixelated)
	}
	// The two screenshots, inside the picture: the box moved and the
	// number changed between frames n1 and n2.
	i1, i2 := decodePNG(t, shot1), decodePNG(t, shot2)
	pw, ph := 160*scale, 120*scale
	x0, y0 := int(geo.Stage.X+(geo.Stage.W-pw)/2), int(geo.Stage.Y+(geo.Stage.H-ph)/2)
	changed, lit, total := 0, 0, 0
	for y := y0 + 2; y < y0+int(ph)-2; y += 2 {
		for x := x0 + 2; x < x0+int(pw)-2; x += 2 {
			total++
			r1, g1, b1, _ := i1.At(x, y).RGBA()
			r2, g2, b2, _ := i2.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				changed++
			}
			if r2>>8 > 40 || g2>>8 > 40 || b2>>8 > 40 {
				lit++
			}
		}
	}
	t.Logf("frames %d and %d: %d of %d sampled pixels of the picture changed, %d lit", n1, n2, changed, total, lit)
	if n2 <= n1 || changed < total/100 {
		t.Errorf("frames %d and %d: only %d of %d sampled pixels of the picture changed", n1, n2, changed, total)
	}
	if lit < total/2 {
		t.Errorf("only %d of %d sampled pixels of the picture are not black: is the picture there?", lit, total)
	}
	// Counters and metadata.
	ct := geo.CounterTexts
	num := regexp.MustCompile(`^[0-9,]+`)
	for _, k := range []string{"read", "skipped-preview", "skipped-idle", "ring-drops", "window", "encoded", "sent", "page-shown"} {
		if !num.MatchString(ct[k]) {
			t.Errorf("counter %s = %q", k, ct[k])
		}
	}
	if ct["ring-drops"] != "0" || strings.HasPrefix(ct["read"], "0") {
		t.Errorf("counters: read %q, ring drops %q", ct["read"], ct["ring-drops"])
	}
	for _, k := range []string{"transport", "ring-wait", "delay"} {
		if !regexp.MustCompile(`^[0-9.]+ (µs|ms|s) / [0-9.]+ (µs|ms|s)$`).MatchString(ct[k]) {
			t.Errorf("latency %s = %q", k, ct[k])
		}
	}
	if !strings.Contains(geo.MetaText, `"boxes": [`) {
		t.Errorf("metadata panel: %q", geo.MetaText)
	}

	// Pause: the picture stays while the preview reads on.
	if err := b.Eval(ctx, `document.getElementById('pause').click()`, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx, `document.body.dataset.state === 'paused'`); err != nil {
		t.Fatal(err)
	}
	held := frameNo()
	var st ringStats
	getJSON(t, hs.URL+"/api/rings/"+base+"-live", &st)
	read0 := st.Preview.Counters.Read
	testutil.Eventually(t, "the preview reads 5 frames while paused", func() bool {
		getJSON(t, hs.URL+"/api/rings/"+base+"-live", &st)
		return st.Preview.Counters.Read >= read0+5
	})
	var badge string
	b.Eval(ctx, `document.getElementById('badge').textContent`, &badge)
	if now := frameNo(); now != held || !strings.Contains(badge, "paused at frame "+strconv.Itoa(held)) {
		t.Errorf("paused at frame %d (badge %q); %d frames later the page shows %d", held, badge, st.Preview.Counters.Read-read0, now)
	}

	// A raw ring: the panel instead of a picture.
	if err := b.Navigate(ctx, hs.URL+"/view/"+base+"-raw"); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx, `!document.getElementById('notimage').hidden`); err != nil {
		t.Fatal(err)
	}
	var panel string
	b.Eval(ctx, `document.getElementById('notimage').innerText`, &panel)
	if !strings.Contains(panel, "Not an image") || !strings.Contains(panel, "raw, 300 B") || !strings.Contains(panel, "00000000  ") {
		t.Errorf("raw ring's panel: %q", panel)
	}
}
