package main

import (
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/framering/framering/internal/testutil"
)

// TestVersion builds the command and checks that --version names the
// module version and the VCS revision the binary was built from.
func TestVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary: skipped in -short mode")
	}
	// -buildvcs=true: the environment may turn stamping off (GOFLAGS).
	bin := filepath.Join(t.TempDir(), "framering")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Skipf("go build -buildvcs=true fails here (no usable git checkout?): %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	v := strings.TrimSpace(string(out))
	if !strings.HasPrefix(v, "framering ") || !strings.Contains(v, ", go1.") {
		t.Errorf("--version = %q", v)
	}
	info, _ := exec.Command("go", "version", "-m", bin).Output()
	if !strings.Contains(string(info), "vcs.revision=") {
		// The go command stamps no revision in a git worktree (.git is a
		// file there) or outside a checkout.
		t.Skipf("go build recorded no VCS revision here; --version = %q", v)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	if rev := strings.TrimSpace(string(head)); !strings.Contains(v, "revision "+rev) {
		t.Errorf("--version = %q, want revision %s", v, rev)
	}
}

// TestVersionOf formats build information as --version prints it.
func TestVersionOf(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef"},
		{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionOf(bi), "v1.2.3 (revision 0123456789abcdef, modified, 2026-01-02T03:04:05Z), go1.26.0"; got != want {
		t.Errorf("versionOf = %q, want %q", got, want)
	}
	bi = &debug.BuildInfo{GoVersion: "go1.26.0"}
	if got, want := versionOf(bi), "(devel), go1.26.0"; got != want {
		t.Errorf("versionOf without VCS = %q, want %q", got, want)
	}
	res := cli(t, "--version")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "framering ") {
		t.Errorf("--version: exit %d\n%s", res.code, res.stdout)
	}
}

// TestCompletion: the completion scripts come out for the three shells,
// and ring names complete for --ring and for stat's and rm's arguments,
// from the --dir given on the command line.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_framering", "zsh": "#compdef framering", "fish": "complete -c framering"} {
		res := cli(t, "completion", shell)
		if res.code != 0 || !strings.Contains(res.stdout, want) {
			t.Errorf("completion %s: exit %d, no %q\n%s", shell, res.code, want, res.stderr)
		}
	}
	dir := testutil.ShmDir(t)
	a, b := testutil.Name(t)+"-a", testutil.Name(t)+"-b"
	for _, n := range []string{a, b} {
		if res := cli(t, "send", "--ring", n, "--dir", dir, "--pattern", "8x8x1", "--count", "1", "--fps", "0", "-q"); res.code != 0 {
			t.Fatalf("send: %d\n%s", res.code, res.stderr)
		}
	}
	plantTmp(t, dir, ".framering-tmp.x.0123456789abcdef", 0) // not a ring: never offered
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"recv", "--dir", dir, "--ring", ""}, []string{a, b}},
		{[]string{"view", "--dir", dir, "--ring", ""}, []string{a, b}},
		{[]string{"stat", "--dir", dir, ""}, []string{a, b}},
		{[]string{"stat", "--dir", dir, a, ""}, nil},
		{[]string{"rm", "--dir", dir, a, ""}, []string{b}},
		{[]string{"rm", "--dir", dir, strings.TrimSuffix(b, "-b") + "-b"}, []string{b}},
		{[]string{"legacy", "mirror", "--dir", dir, "--from", ""}, []string{a, b}},
		{[]string{"metrics", "--dir", dir, ""}, []string{a, b}},
	} {
		res := cli(t, append([]string{"__complete"}, tc.args...)...)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
			if l != "" && !strings.HasPrefix(l, ":") {
				got = append(got, l)
			}
		}
		if res.code != 0 || strings.Join(got, ",") != strings.Join(tc.want, ",") || !strings.Contains(res.stdout, ":4") {
			t.Errorf("completing %v: %v (exit %d), want %v\n%s", tc.args, got, res.code, tc.want, res.stdout)
		}
	}
}

// TestDirEnv: $FRAMERING_DIR is the default of --dir for every command;
// --dir still wins.
func TestDirEnv(t *testing.T) {
	dir, other, name := testutil.ShmDir(t), testutil.ShmDir(t), testutil.Name(t)
	env := []string{dirEnv + "=" + dir}
	run := func(args ...string) result { t.Helper(); return finish(t, startEnv(t, env, args...)) }
	if res := run("send", "--ring", name, "--pattern", "8x8x1", "--count", "3", "--fps", "0", "-q"); res.code != 0 ||
		!strings.Contains(res.stdout, filepath.Join(dir, "framering."+name)) {
		t.Fatalf("send under %s: exit %d\n%s%s", dirEnv, res.code, res.stdout, res.stderr)
	}
	if res := run("ls"); res.code != 0 || !strings.Contains(res.stdout, name) {
		t.Errorf("ls under %s: exit %d\n%s%s", dirEnv, res.code, res.stdout, res.stderr)
	}
	if res := run("recv", "--ring", name, "--start", "oldest", "--count", "3", "--verify", "-q"); res.code != 0 {
		t.Errorf("recv under %s: exit %d\n%s", dirEnv, res.code, res.stderr)
	}
	if res := run("stat", name); res.code != 0 {
		t.Errorf("stat under %s: exit %d\n%s", dirEnv, res.code, res.stderr)
	}
	if res := run("ls", "--dir", other); res.code != 0 || strings.Contains(res.stdout, name) {
		t.Errorf("ls --dir under %s: exit %d\n%s", dirEnv, res.code, res.stdout)
	}
	for _, cmd := range []string{"send", "view", "metrics", "bench", "demo", "rm"} {
		if res := run(cmd, "--help"); !strings.Contains(res.stdout, `(default "`+dir+`")`) {
			t.Errorf("%s --help under %s does not show it as --dir's default:\n%s", cmd, dirEnv, res.stdout)
		}
	}
	if res := run("rm", name); res.code != 0 {
		t.Errorf("rm under %s: exit %d\n%s", dirEnv, res.code, res.stderr)
	}
}
