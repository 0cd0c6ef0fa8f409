package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestDemoEndToEnd runs the README's first command, shortened: a writer and
// two readers as separate processes. Every reader must deliver frames and
// accept no torn frame.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs 3 processes: skipped in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "framering")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	out, err := exec.Command(bin, "demo", "--duration", "2s", "--fps", "200", "--size", "320x240x3", "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	m := regexp.MustCompile(`frames published: (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no 'frames published' line")
	}
	published, _ := strconv.Atoi(string(m[1]))
	if published < 50 {
		t.Errorf("published %d frames in 2 s at 200 fps", published)
	}
	rows := regexp.MustCompile(`(?m)^\s+r(\d)\s+(ordered copy|latest view)\s+(\d+)\s+(\d+)\s+(\d+)\s`).FindAllSubmatch(out, -1)
	if len(rows) != 2 {
		t.Fatalf("want 2 reader rows in the closing table, got %d", len(rows))
	}
	for _, r := range rows {
		delivered, _ := strconv.Atoi(string(r[3]))
		dropped, _ := strconv.Atoi(string(r[4]))
		if r[5][0] != '0' || len(r[5]) != 1 {
			t.Errorf("reader %s accepted %s torn frames", r[1], r[5])
		}
		if delivered == 0 || delivered+dropped > published {
			t.Errorf("reader %s: delivered %d dropped %d of %d published", r[1], delivered, dropped, published)
		}
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, "*")); len(ents) != 0 {
		t.Errorf("demo left %v behind", ents)
	}
}
