package consumer_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
)

// FuzzSegment builds whole segment files from the fuzzer's bytes (a valid
// superblock for a small geometry, its live words, every slot's header
// and payload, optionally a damaged static byte or a truncated file, and
// optionally a "live writer": the OFD lock held with a fresh heartbeat),
// and reads them through consumer with every call: Open, Read, Acquire and
// Release, ReadInPlace. Every read has a short deadline, and the whole
// sequence a hang guard: a read that does not return is a failure (a
// hang), as is a panic or broken accounting.
//
// Input layout (missing bytes are zero):
//
//	0     slots: 2 << (b & 3)
//	1..2  payload capacity, 1 + (le16 % 4096)
//	3     metadata capacity
//	4     flags: 1 live writer, 2 fresh heartbeat, 4 truncate, 8 damage a
//	      static byte, 16 latest mode, 32 start at oldest, 64 start at next
//	5..6  truncation size (flag 4) or damaged offset (flag 8, below 60)
//	7     the damaging byte
//	8..39 Head, Notify (low 4 bytes of the word), Generation, Heartbeat (le64 each)
//	40..  per slot: 128 header bytes, then 64 payload bytes
func FuzzSegment(f *testing.F) {
	for _, seed := range segmentSeeds() {
		f.Add(seed)
	}
	dir := fuzzDir(f)
	var seq atomic.Uint64
	f.Fuzz(func(t *testing.T, data []byte) {
		name := fmt.Sprintf("fz%d-%d", os.Getpid(), seq.Add(1))
		path := ring.Path(dir, name)
		sp, err := buildSegment(path, data)
		if err != nil {
			t.Skip(err) // the input names no valid geometry
		}
		defer os.Remove(path)
		if sp.live {
			lk, err := shm.Open(path, true)
			if err != nil {
				t.Fatal(err)
			}
			defer lk.Close()
			if err := lk.LockWrite(); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan string, 1)
		go func() { done <- readAll(dir, name, sp) }()
		select {
		case problem := <-done:
			if problem != "" {
				t.Fatal(problem)
			}
		case <-time.After(10 * time.Second): // every read has a 10 ms deadline
			t.Fatalf("hang: a read did not return within 10 s (input %x)", data)
		}
	})
}

// fuzzDir is one directory per process for the fuzzed segments, under
// /dev/shm where it exists: framering-fuzz-<pid>. The fuzzing engine stops
// its worker processes without running their cleanups, so each process
// first removes the directories of fuzz processes that are gone.
func fuzzDir(f *testing.F) string {
	base := "/dev/shm"
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
		return f.TempDir()
	}
	old, _ := filepath.Glob(filepath.Join(base, "framering-fuzz-*"))
	for _, d := range old {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "framering-fuzz-"))
		if err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
	d := filepath.Join(base, fmt.Sprintf("framering-fuzz-%d", os.Getpid()))
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// segParams is what buildSegment made.
type segParams struct {
	geo  ring.Geometry
	live bool
	opts consumer.Options
}

// buildSegment writes the segment file data describes at path.
func buildSegment(path string, data []byte) (segParams, error) {
	b := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	u64 := func(i int) uint64 {
		var w [8]byte
		for j := range w {
			w[j] = b(i + j)
		}
		return binary.LittleEndian.Uint64(w[:])
	}
	flags := b(4)
	g := ring.Geometry{Slots: 2 << (b(0) & 3), PayloadCap: 1 + int(binary.LittleEndian.Uint16([]byte{b(1), b(2)}))%4096, MetaCap: int(b(3))}
	sb, err := layout.EncodeSuperblock(g, 1)
	if err != nil {
		return segParams{}, err
	}
	file := make([]byte, g.Size())
	copy(file, sb)
	le := binary.LittleEndian
	le.PutUint64(file[192:], u64(8))          // Head
	le.PutUint32(file[200:], uint32(u64(16))) // Notify
	le.PutUint64(file[80:], u64(24))          // Generation
	le.PutUint64(file[128:], u64(32))         // Heartbeat
	if flags&2 != 0 {
		le.PutUint64(file[128:], uint64(ring.Now()))
	}
	stride := layout.SlotStride(g)
	off := 40
	for i := 0; i < g.Slots; i++ {
		slot := file[layout.SuperblockSize+int64(i)*stride:]
		for j := 0; j < layout.SlotHeaderSize; j++ {
			slot[j] = b(off + j)
		}
		off += layout.SlotHeaderSize
		pay := slot[layout.PayloadOffset(g):]
		for j := 0; j < 64 && j < g.PayloadCap; j++ {
			pay[j] = b(off + j)
		}
		off += 64
	}
	if flags&8 != 0 {
		file[int(b(5))%60] ^= b(7) | 1
	}
	if flags&4 != 0 {
		file = file[:int(le.Uint16([]byte{b(5), b(6)}))%len(file)]
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		return segParams{}, err
	}
	sp := segParams{geo: g, live: flags&1 != 0, opts: consumer.Options{WaitSlice: time.Millisecond, HungAfter: time.Second}}
	if flags&16 != 0 {
		sp.opts.Mode = consumer.Latest
	}
	switch {
	case flags&32 != 0:
		sp.opts.StartAt = consumer.Oldest
	case flags&64 != 0:
		sp.opts.StartAt = consumer.Next
	}
	return sp, nil
}

// readAll opens ring name and reads it every way there is, each read with
// a 10 ms deadline, until it has nothing more to give. It returns a
// description of what went wrong, or "".
func readAll(dir, name string, sp segParams) string {
	o := sp.opts
	o.Dir = dir
	r, err := consumer.Open(name, o)
	if err != nil {
		return ""
	}
	defer r.Close()
	var mu sync.Mutex // ReadInPlace's callback checks
	problem := ""
	for i := 0; i < 2*sp.geo.Slots+4; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		switch i % 3 {
		case 0:
			f, err := r.Read(ctx, nil)
			if err == nil && (len(f.Data) > sp.geo.PayloadCap || len(f.Meta) > sp.geo.MetaCap) {
				problem = fmt.Sprintf("Read returned %d bytes and %d of metadata from %v", len(f.Data), len(f.Meta), sp.geo)
			}
		case 1:
			v, err := r.Acquire(ctx)
			if err == nil {
				if len(v.Frame().Data) > sp.geo.PayloadCap {
					problem = fmt.Sprintf("Acquire gave %d bytes from %v", len(v.Frame().Data), sp.geo)
				}
				v.Release()
			}
		case 2:
			err = r.ReadInPlace(ctx, func(f *ring.Frame) error {
				var sum byte
				for _, c := range f.Data {
					sum += c
				}
				_ = sum
				mu.Lock()
				defer mu.Unlock()
				if len(f.Data) > sp.geo.PayloadCap {
					problem = fmt.Sprintf("ReadInPlace gave %d bytes from %v", len(f.Data), sp.geo)
				}
				return nil
			})
		}
		cancel()
		if problem != "" {
			return problem
		}
		if st := r.Stats(); st.Delivered+st.Dropped() != st.Considered {
			return fmt.Sprintf("accounting broken after %v: %+v", err, st)
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ring.ErrWriterGone) {
			return "" // nothing more to read
		}
	}
	return ""
}

// segmentSeeds are inputs for plausible segments: frames 1..n in their
// slots under a matching head, and the hostile cases of issue 9 (a slot
// stuck odd with and without a writer, Head near 2^64, a head ahead of the
// slots, a damaged header).
func segmentSeeds() [][]byte {
	const slots, payCap = 4, 64
	seed := func(flags byte, head uint64, edit func(slot int, h []byte)) []byte {
		d := make([]byte, 40+slots*(128+64))
		d[0] = 1 // 4 slots
		binary.LittleEndian.PutUint16(d[1:], payCap-1)
		d[3] = 8
		d[4] = flags
		binary.LittleEndian.PutUint64(d[8:], head)
		binary.LittleEndian.PutUint64(d[24:], 1)
		for i := 0; i < slots; i++ {
			h := d[40+i*(128+64):]
			n := uint64(i)
			if n == 0 {
				n = 4
			}
			binary.LittleEndian.PutUint64(h[0:], 2)  // Seq: even
			binary.LittleEndian.PutUint64(h[8:], n)  // FrameNo
			binary.LittleEndian.PutUint64(h[16:], 1) // Generation
			binary.LittleEndian.PutUint32(h[36:], uint32(ring.Raw))
			binary.LittleEndian.PutUint64(h[48:], 16) // PayloadLen
			binary.LittleEndian.PutUint64(h[56:], 1)  // PublishNs
			if edit != nil {
				edit(i, h)
			}
		}
		return d
	}
	return [][]byte{
		seed(32, 4, nil),
		seed(32|1|2, 4, nil),
		seed(32, 4, func(i int, h []byte) {
			if i == 2 {
				binary.LittleEndian.PutUint64(h[0:], 3) // stuck odd, no writer
			}
		}),
		seed(32|1|2, 4, func(i int, h []byte) {
			if i == 2 {
				binary.LittleEndian.PutUint64(h[0:], 3) // stuck odd, live writer
			}
		}),
		seed(64, 1<<64-2, nil),
		seed(16|1|2, 1001, nil),
		seed(0, 10, nil),
		seed(32, 4, func(i int, h []byte) {
			if i == 1 {
				binary.LittleEndian.PutUint64(h[48:], 1<<40) // PayloadLen beyond the slot
			}
		}),
	}
}
