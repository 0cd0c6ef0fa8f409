package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
)

const (
	workerHelper = "bench-worker"
	specEnv      = "FRAMERING_BENCH_SPEC"
)

func TestMain(m *testing.M) {
	testutil.Helper(workerHelper, func() int { return WorkerMain(os.Getenv(specEnv), os.Stdout) })
	// The CLI's way: the spec is the last argument (see TestExecSpawner).
	testutil.Helper(workerHelper+"-arg", func() int { return WorkerMain(os.Args[len(os.Args)-1], os.Stdout) })
	testutil.Main(m)
}

var _ Proc = (*testutil.Child)(nil)

// testRunner runs workers as re-executed test binaries, in a per-test
// directory under /dev/shm.
func testRunner(tb testing.TB) *Runner {
	return &Runner{
		Dir: testutil.ShmDir(tb),
		Spawn: func(spec string) (Proc, error) {
			return testutil.Start(tb, workerHelper, specEnv+"="+spec), nil
		},
	}
}

// foreignWorkers builds the C worker into t's temporary directory (cc,
// as make c does) and finds the Python one; a missing toolchain leaves
// that language's cases skipped, with the reason.
func foreignWorkers(t testing.TB) Workers {
	t.Helper()
	w := FindWorkers("", "", ".")
	exe := filepath.Join(t.TempDir(), "framering-bench-c")
	out, err := exec.Command("cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o", exe, "workers/worker.c").CombinedOutput()
	if err != nil {
		w.C, w.CMissing = "", fmt.Sprintf("C reader: cc failed: %v %s", err, out)
	} else {
		w.C, w.CMissing = exe, ""
	}
	return w
}

// hangGuard is how long a whole test case may take before it is treated
// as hung (not a performance limit).
const hangGuard = 2 * time.Minute
