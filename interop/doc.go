// Package interop holds no code: its tests prove that the three
// implementations of the ring, Go, C (c/framering.h, the programs built by
// `make c`) and Python (python/framering), speak the same ring across
// processes in every direction.
//
//   - TestMatrix: writers {Go, C, Python} x readers {Go, C, Python}, each
//     pair at full speed with every accepted frame checked against the test
//     pattern, exact drop accounting in every reader's window, the writer
//     SIGKILLed mid-stream, reported gone and resumed when a new writer of
//     the same language takes the ring over; ordered and latest readers,
//     copies and views.
//   - TestTakeoverAcrossLanguages: a writer of another language takes over
//     a killed writer's ring.
//   - TestSegmentsEqual: the three writers produce the same bytes (pids and
//     clocks aside), which `framering stat` and the Go reader accept.
//   - TestGeometryChangeReadersRemap, TestGoPaddedFramesPythonReader.
//
// The tests drive the command-line programs (framering send/recv,
// framering-send-c/-recv-c, python3 -m framering send/recv) and, for Go
// views, this test binary re-executed as a reader. A language whose
// toolchain is missing is skipped with a message saying what to install
// (gcc and make for C; /usr/bin/python3 with numpy for Python, or the
// interpreter $FRAMERING_PYTHON names); the others still run. -short
// shortens the full-speed phases.
package interop
