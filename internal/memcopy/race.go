//go:build race

package memcopy

// raceEnabled sends every Copy to the built-in copy, which the race
// detector instruments.
const raceEnabled = true
