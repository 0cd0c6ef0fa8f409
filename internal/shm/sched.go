package shm

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// CPUs lists the CPUs the calling thread may run on (sched_getaffinity),
// in increasing order.
func CPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var out []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// PinProcess restricts every thread of the calling process to the given
// CPUs (sched_setaffinity on each thread of /proc/self/task). Threads
// created afterwards inherit their creator's mask, so the whole process
// stays there. A thread that exits meanwhile is skipped.
func PinProcess(cpus ...int) error {
	if len(cpus) == 0 {
		return errors.New("pin: no CPU given")
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= len(set)*64 {
			return fmt.Errorf("pin: CPU %d out of range", c)
		}
		set.Set(c)
	}
	// A thread started while we walk the list inherits the old mask from
	// a thread not yet pinned: walk until a pass finds nothing new.
	done := map[int]bool{}
	for pass := 0; pass < 8; pass++ {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("pin: %w", err)
		}
		fresh := 0
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			fresh++
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin to CPUs %v: sched_setaffinity: %w", cpus, err)
			}
			done[tid] = true
		}
		if fresh == 0 {
			return nil
		}
	}
	return nil
}
