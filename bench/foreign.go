package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/framering/framering/internal/proc"
)

// Workers says where the readers in other languages are: the C worker
// (bench/workers/worker.c on c/framering.h, built by make c as
// c/build/framering-bench-c) and the Python worker
// (bench/workers/worker.py on the python/ package, run by python3 with
// numpy). The Go coordinator starts them as reader processes with the
// flags of args; they speak the Go workers' line protocol ("ready", then
// "result {json}").
type Workers struct {
	// C is the C worker's path; empty when missing.
	C string
	// Python is the command that runs the Python worker (interpreter and
	// script); empty when missing.
	Python []string
	// CMissing and PythonMissing say why a worker is missing, and what to
	// do about it.
	CMissing, PythonMissing string
}

// Relative paths of the workers in the source tree.
const (
	CWorkerPath      = "c/build/framering-bench-c"
	PythonWorkerPath = "bench/workers/worker.py"
)

// FindWorkers looks for the workers in the first of dirs, or a parent of
// one, that holds the framering source tree (bench/workers/worker.py);
// cworker, if not empty, is the C worker's path and python the
// interpreter (default: python3, else /usr/bin/python3). The Python worker needs the interpreter
// to import numpy; the check runs it once.
func FindWorkers(cworker, python string, dirs ...string) Workers {
	var w Workers
	root := ""
	for _, d := range dirs {
		if root = sourceRoot(d); root != "" {
			break
		}
	}
	switch {
	case cworker != "":
		if err := executable(cworker); err != nil {
			w.CMissing = fmt.Sprintf("C reader: %v", err)
		} else {
			w.C = cworker
		}
	case root == "":
		w.CMissing = "C reader: not in a framering source tree (run bench from it after make c, or give --c-worker)"
	default:
		p := filepath.Join(root, CWorkerPath)
		if err := executable(p); err != nil {
			w.CMissing = fmt.Sprintf("C reader: %s missing: run make c in %s (needs a C compiler)", p, root)
		} else {
			w.C = p
		}
	}
	if root == "" {
		w.PythonMissing = "Python reader: not in a framering source tree (run bench from it)"
		return w
	}
	// python3 first (or the one given), then Debian's, which has numpy
	// where a python3 earlier on PATH (pyenv, a venv) may not.
	cands := []string{python}
	if python == "" {
		cands = []string{"python3", "/usr/bin/python3"}
	}
	exe, why := "", ""
	for _, p := range cands {
		e, err := exec.LookPath(p)
		if err != nil {
			why = fmt.Sprintf("Python reader: %s not found (apt-get install python3 python3-numpy, or give --python)", p)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, e, "-c", "import numpy").CombinedOutput()
		cancel()
		if err != nil {
			why = fmt.Sprintf("Python reader: %s cannot import numpy (apt-get install python3-numpy, or give --python): %v %s", e, err, lastOf(out))
			continue
		}
		exe = e
		break
	}
	if exe == "" {
		w.PythonMissing = why
		return w
	}
	w.Python = []string{exe, filepath.Join(root, PythonWorkerPath)}
	return w
}

// lastOf is the last line of b (a Python traceback's error).
func lastOf(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// sourceRoot returns dir or the nearest parent holding the Python worker,
// or "".
func sourceRoot(dir string) string {
	if dir == "" {
		return ""
	}
	d, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(d, PythonWorkerPath)); err == nil {
			return d
		}
		up := filepath.Dir(d)
		if up == d {
			return ""
		}
		d = up
	}
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// missing says why lang's worker cannot run ("" if it can, or for Go).
func (w *Workers) missing(lang string) string {
	switch lang {
	case "c":
		if w.C == "" {
			return orDefault(w.CMissing, "C reader: no C worker given")
		}
	case "python":
		if len(w.Python) == 0 {
			return orDefault(w.PythonMissing, "Python reader: no Python worker given")
		}
	}
	return ""
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// args is the command line of a foreign reader for sp.
func args(sp *workerSpec) []string {
	c := sp.Case
	d := c.Duration
	if c.Kind == Idle {
		d = idleDuration(c)
	}
	return []string{
		"--kind", string(c.Kind),
		"--transport", string(c.Transport),
		"--wait", string(c.Wait),
		"--size", c.Shape.String(),
		"--index", strconv.Itoa(sp.Index),
		"--dir", sp.Dir,
		"--ring", "data",
		"--cpu", strconv.Itoa(sp.CPU),
		"--duration-ns", strconv.FormatInt(int64(d), 10),
	}
}

// start starts lang's worker as reader sp.
func (w *Workers) start(lang string, sp *workerSpec) (Proc, error) {
	var argv []string
	switch lang {
	case "c":
		argv = []string{w.C}
	case "python":
		argv = append(argv, w.Python...)
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("%s", w.missing(lang))
	}
	cmd := exec.Command(argv[0], append(argv[1:], args(sp)...)...)
	return proc.Start(lang+" bench worker", cmd)
}
