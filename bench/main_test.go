package bench

import (
	"os"
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

// hangGuard is how long a whole test case may take before it is treated
// as hung (not a performance limit).
const hangGuard = 2 * time.Minute
