//go:build amd64 && !purego

package memcopy

func chunkForTest() int { return chunk }
