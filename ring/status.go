package ring

import "time"

// Status is a snapshot of a ring's superblock: its geometry and the live
// words its writer keeps. A writer's Stats and the inspection tools return
// it.
type Status struct {
	Geometry    Geometry
	Head        uint64    // number of the newest committed frame; 0: none yet
	Generation  uint64    // writer opens since the ring was created
	WriterPID   int       // pid of the newest writer
	WriterStart time.Time // when the newest writer opened the ring; zero if none did
	Created     time.Time // when the segment was created
	Heartbeat   int64     // CLOCK_MONOTONIC ns of the writer's last heartbeat (see [Now])
	FramesTotal uint64    // frames committed since the segment was created
	BytesTotal  uint64    // payload bytes committed since the segment was created
}
