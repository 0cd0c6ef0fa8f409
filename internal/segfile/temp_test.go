package segfile

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestRingOfTemp(t *testing.T) {
	for file, want := range map[string]string{
		".framering-tmp.cam0.0123456789abcdef":     "cam0",
		".framering-tmp.cam.0.v2.0123456789abcdef": "cam.0.v2", // dots in the name
		".framering-tmp.4242.cam0":                 "cam0",     // older Go writers
		".framering-tmp.4242.cam.0":                "cam.0",
		".framering-tmp.cam0.0123":                 "", // neither form
		".framering-tmp.":                          "",
		"framering.cam0":                           "",
		".framering-tmp.cam0.0123456789abcdeg":     "",
	} {
		if got := RingOfTemp(file); got != want {
			t.Errorf("RingOfTemp(%q) = %q, want %q", file, got, want)
		}
	}
}

func TestTempNameUnique(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		p := TempName("/d", "cam0")
		f := filepath.Base(p)
		if filepath.Dir(p) != "/d" || !strings.HasPrefix(f, TempPrefix+"cam0.") || RingOfTemp(f) != "cam0" || seen[p] {
			t.Fatalf("TempName = %q (seen before: %v)", p, seen[p])
		}
		seen[p] = true
	}
}
