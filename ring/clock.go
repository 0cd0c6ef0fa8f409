package ring

import "github.com/framering/framering/internal/shm"

func monotonic() int64 { return shm.Monotonic() }
