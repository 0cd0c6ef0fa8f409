package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/memcopy"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/legacy"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// errRejected is a view that Release refused: the slot was overwritten
// while the reader worked on it, and the reader was told so.
var errRejected = errors.New("view overwritten before release")

// sender is the writing end of a transport in one process.
type sender interface {
	// connect finishes what needs the peers (accepting connections,
	// opening FIFOs); it is called after the start signal.
	connect() error
	// send publishes frame b: it writes the publish start time into the
	// frame's header and returns it. framering's view transports first
	// copy the frame into a reserved slot (standing in for a producer that
	// fills the slot in place) and publishing starts at Commit, which
	// stamps Frame.Published; its copy transports publish by copy
	// (Writer.Publish, whose copy is part of publishing); for the others
	// publishing starts with the write.
	send(b []byte) (int64, error)
	close() error
}

// receiver is the reading end of a transport in one process.
type receiver interface {
	// recv waits for the next frame and returns it with the time it
	// became usable to the reader (CLOCK_MONOTONIC ns). io.EOF means the
	// writer is done or the reader was told to stop.
	recv(ctx context.Context) (frame []byte, at int64, err error)
	// done ends the use of the frame recv returned: errRejected if a view
	// was overwritten meanwhile.
	done() error
	// interrupt unblocks a recv from another goroutine.
	interrupt()
	close() error
}

const (
	ringSlots = 8                     // the first ringSlots frames of a case are its first touches: reported apart
	spinFor   = 50 * time.Millisecond // longer than any latency-run gap: spin readers never sleep
	waitSlice = 20 * time.Millisecond // notice the writer's exit quickly
	pollEvery = time.Millisecond      // the recipe's sleep
	pipeBytes = 1 << 20               // F_SETPIPE_SZ, the default /proc/sys/fs/pipe-max-size
)

// newSender sets up the writing end called name for readers readers and
// returns the address readers need ("-" when they need none).
func newSender(sp *workerSpec, name string, readers int) (sender, string, error) {
	s := sp.Case.Shape
	switch t := sp.Case.Transport; {
	case t.ring():
		t0 := time.Now()
		w, err := producer.Open(name, producer.Options{Dir: sp.Dir, Slots: ringSlots, MaxFrameBytes: s.Bytes()})
		if err != nil {
			return nil, "", err
		}
		info := ring.FrameInfo{Width: s.W, Height: s.H, Channels: s.C, Format: ring.FormatForChannels(s.C)}
		rs := &ringSender{w: w, info: info, openNs: time.Since(t0).Nanoseconds()}
		switch {
		case sp.Case.Kind == PingPong && t == FrameringView:
			rs.zeroCopy = true
		case !t.view():
			rs.publish = true
		}
		return rs, "-", nil
	case t == Bare:
		bs, err := newBareSender(sp.Dir, name, sp.Case.Wait == Futex)
		if err != nil {
			return nil, "", err
		}
		return bs, "-", nil
	case t == Legacy:
		w, err := legacy.NewOldWriter(sp.Dir, name, s.W, s.H, s.C)
		if err != nil {
			return nil, "", err
		}
		// Frame 0, which readers skip: the old reader gives up on a header
		// of another size, and a fresh object is all zeros.
		b := newFrame(s.Bytes())
		prepare(b, 0)
		w.Write(b, 0)
		return &legacySender{w: w}, "-", nil
	case t == UDS || t == TCP:
		var ln net.Listener
		var err error
		if t == UDS {
			ln, err = net.Listen("unix", filepath.Join(sp.Dir, name+".sock"))
		} else {
			ln, err = net.Listen("tcp", "127.0.0.1:0")
		}
		if err != nil {
			return nil, "", fmt.Errorf("%s listen: %w", t, err)
		}
		ss := newStreamSender(readers)
		ss.ln = ln
		go func() {
			for i := 0; i < readers; i++ {
				c, err := ln.Accept()
				ss.opened <- opened{c, err}
				if err != nil {
					return
				}
			}
		}()
		addr := "-"
		if t == TCP {
			addr = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		}
		return ss, addr, nil
	case t == Pipe:
		ss := newStreamSender(readers)
		for i := 0; i < readers; i++ {
			path := fifoPath(sp.Dir, name, i)
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				return nil, "", fmt.Errorf("pipe %s: mkfifo: %w", path, err)
			}
			go func() {
				// Blocks until the reader opens its end.
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err == nil {
					setPipeSize(f)
				}
				ss.opened <- opened{f, err}
			}()
		}
		return ss, "-", nil
	}
	return nil, "", fmt.Errorf("transport %s has no sender", sp.Case.Transport)
}

func fifoPath(dir, name string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("%s.%d.fifo", name, i))
}

// setPipeSize grows the pipe buffer from 64 KiB to 1 MiB, as a tuned
// pipe user would; best effort.
func setPipeSize(f *os.File) {
	const fSetPipeSz = 1031 // F_SETPIPE_SZ, not in package syscall
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, pipeBytes)
		})
	}
}

// newReceiver opens reading end index of the sender called name.
func newReceiver(ctx context.Context, sp *workerSpec, name string, index int) (receiver, error) {
	s := sp.Case.Shape
	switch t := sp.Case.Transport; {
	case t == FrameringCopy || t == FrameringView:
		opts := consumer.Options{Dir: sp.Dir, StartAt: consumer.Next, WaitSlice: waitSlice}
		if sp.Case.Kind == Throughput {
			// A reader slower than a flat-out writer takes the newest frame
			// (Ordered would count the frames it is lapped on and deliver
			// the rest late).
			opts.Mode = consumer.Latest
		}
		if sp.Case.Wait == Spin {
			opts.Spin = spinFor
		}
		octx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		r, err := consumer.OpenWait(octx, name, opts)
		if err != nil {
			return nil, err
		}
		expired, cancelExpired := context.WithDeadline(context.Background(), time.Unix(0, 0))
		cancelExpired() // an already expired context makes Read a non-blocking try
		rr := &ringReceiver{r: r, view: t == FrameringView, wait: sp.Case.Wait, expired: expired}
		if !rr.view {
			rr.buf = make([]byte, s.Bytes())
		}
		return rr, nil
	case t == Bare:
		return openBareReceiver(ctx, sp.Dir, name, sp.Case.Wait == Spin)
	case t == Legacy:
		r, err := legacy.NewOldReader(sp.Dir, name, s.W, s.H, s.C)
		if err != nil {
			return nil, err
		}
		return &legacyReceiver{r: r, spin: sp.Case.Wait == Spin, buf: make([]byte, s.Bytes())}, nil
	case t == UDS || t == TCP:
		var c net.Conn
		var err error
		if t == UDS {
			c, err = net.DialTimeout("unix", filepath.Join(sp.Dir, name+".sock"), connectTimeout)
		} else {
			c, err = net.DialTimeout("tcp", "127.0.0.1:"+sp.Addr, connectTimeout)
		}
		if err != nil {
			return nil, fmt.Errorf("%s dial: %w", t, err)
		}
		return &streamReceiver{c: c, buf: make([]byte, s.Bytes())}, nil
	case t == Pipe:
		f, err := os.OpenFile(fifoPath(sp.Dir, name, index), os.O_RDONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("pipe: %w", err)
		}
		return &streamReceiver{c: f, buf: make([]byte, s.Bytes())}, nil
	}
	return nil, fmt.Errorf("transport %s has no receiver", sp.Case.Transport)
}

// backChannel is the ping side's receiver for the pongs: the same
// connection for sockets, a second ring, slot or FIFO otherwise.
func backChannel(ctx context.Context, sp *workerSpec, snd sender, name string) (receiver, error) {
	if ss, ok := snd.(*streamSender); ok && sp.Case.Transport != Pipe {
		return &streamReceiver{c: ss.conns[0], buf: make([]byte, sp.Case.Shape.Bytes()), shared: true}, nil
	}
	return newReceiver(ctx, sp, name, 0)
}

// replyChannel is the pong side's sender.
func replyChannel(sp *workerSpec, rcv receiver, name string) (sender, error) {
	if sr, ok := rcv.(*streamReceiver); ok && sp.Case.Transport != Pipe {
		ss := newStreamSender(1)
		ss.opened <- opened{sr.c, nil}
		ss.shared = true
		return ss, nil
	}
	s, _, err := newSender(sp, name, 1)
	return s, err
}

// framering.

type ringSender struct {
	w    *producer.Writer
	info ring.FrameInfo
	// publish: publish by copy (Writer.Publish). zeroCopy: fill only the
	// 16-byte bench header of the loan (ping-pong in place, as iceperf's
	// zero-copy run writes only its header). Otherwise the whole frame is
	// copied into the loan before Commit.
	publish, zeroCopy bool
	openNs            int64 // producer.Open: creating the ring (and prefaulting it)
}

func (s *ringSender) connect() error { return nil }

func (s *ringSender) send(b []byte) (int64, error) {
	if s.publish {
		t := ring.Now()
		setSend(b, t)
		_, err := s.w.Publish(s.info, b)
		return t, err
	}
	l, err := s.w.Reserve(s.info)
	if err != nil {
		return 0, err
	}
	px := l.Data()
	if len(px) != len(b) {
		l.Abort()
		return 0, fmt.Errorf("frame of %d bytes for a buffer of %d", len(px), len(b))
	}
	if s.zeroCopy {
		copy(px[:benchHdr], b[:benchHdr])
	} else {
		memcopy.Copy(px, b) // the library's copy-in routine, as Publish's
	}
	t := ring.Now()
	setSend(px, t)
	if err := l.Commit(); err != nil {
		return 0, err
	}
	return t, nil
}

func (s *ringSender) close() error { return s.w.Close() }

type ringReceiver struct {
	r       *consumer.Reader
	view    bool
	wait    Wait
	buf     []byte
	v       consumer.View
	viewOut bool
	expired context.Context
	pub     int64 // Frame.Published of the last frame: the writer's Commit
}

func (r *ringReceiver) recv(ctx context.Context) ([]byte, int64, error) {
	for {
		c := ctx
		if r.wait == Poll {
			c = r.expired
		}
		var f *ring.Frame
		var err error
		if r.view {
			r.v, err = r.r.Acquire(c)
			if err == nil {
				r.viewOut = true
				f = r.v.Frame()
			}
		} else {
			var fr ring.Frame
			fr, err = r.r.Read(c, r.buf)
			f = &fr
		}
		if err == nil {
			at := ring.Now()
			r.pub = f.Published
			return f.Data, at, nil
		}
		switch {
		case ctx.Err() != nil, errors.Is(err, ring.ErrWriterGone), errors.Is(err, ring.ErrClosed):
			return nil, 0, io.EOF
		case r.wait == Poll && errors.Is(err, context.DeadlineExceeded):
			time.Sleep(pollEvery)
			continue
		}
		return nil, 0, err
	}
}

func (r *ringReceiver) done() error {
	if !r.viewOut {
		return nil
	}
	err := r.v.Release()
	r.viewOut = false
	if errors.Is(err, ring.ErrOverwritten) {
		return errRejected
	}
	return err
}

func (r *ringReceiver) interrupt() {} // a blocked read ends with its context

// close releases a view still out (a worker that stopped between recv and
// done: Close would wait for it) and closes the reader.
func (r *ringReceiver) close() error {
	r.done()
	return r.r.Close()
}

// The old recipe.

type legacySender struct{ w *legacy.OldWriter }

func (s *legacySender) connect() error { return nil }
func (s *legacySender) send(b []byte) (int64, error) {
	t := ring.Now()
	setSend(b, t)
	s.w.Write(b, 0)
	return t, nil
}
func (s *legacySender) close() error { return s.w.Close() }

// legacyReceiver is the old reader: look at the header, copy the pixels if
// frame_valid is 1, never look again; otherwise sleep 1 ms (or, in spin
// mode, look again at once). The recipe has no frame counter: a frame it
// already returned comes back until the next one is written, so frames
// whose sequence number was seen before are skipped.
type legacyReceiver struct {
	r    *legacy.OldReader
	spin bool
	buf  []byte
	last uint64
}

func (r *legacyReceiver) recv(ctx context.Context) ([]byte, int64, error) {
	for {
		_, ok, err := r.r.TryRead(r.buf)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			if seq := frameSeq(r.buf); seq != r.last {
				r.last = seq
				return r.buf, ring.Now(), nil
			}
		}
		if ctx.Err() != nil {
			return nil, 0, io.EOF
		}
		if !r.spin {
			time.Sleep(pollEvery)
		}
	}
}

func (r *legacyReceiver) done() error  { return nil }
func (r *legacyReceiver) interrupt()   {}
func (r *legacyReceiver) close() error { return r.r.Close() }

// Sockets and pipes.

type opened struct {
	c   io.ReadWriteCloser
	err error
}

// streamSender writes every frame to each of its connections, in
// parallel when there are several (one kernel copy per reader).
type streamSender struct {
	n      int
	opened chan opened
	conns  []io.ReadWriteCloser
	ln     net.Listener
	shared bool // the connection belongs to the receiver (pong side)
	once   sync.Once
}

func newStreamSender(n int) *streamSender {
	return &streamSender{n: n, opened: make(chan opened, n)}
}

func (s *streamSender) connect() error {
	timeout := time.After(connectTimeout)
	for len(s.conns) < s.n {
		select {
		case o := <-s.opened:
			if o.err != nil {
				return fmt.Errorf("connect reader: %w", o.err)
			}
			s.conns = append(s.conns, o.c)
		case <-timeout:
			return fmt.Errorf("%d of %d readers connected in %v", len(s.conns), s.n, connectTimeout)
		}
	}
	if s.ln != nil {
		s.ln.Close()
	}
	return nil
}

func (s *streamSender) send(b []byte) (int64, error) {
	t := ring.Now()
	setSend(b, t)
	if len(s.conns) == 1 {
		_, err := s.conns[0].Write(b)
		return t, err
	}
	errs := make([]error, len(s.conns))
	var wg sync.WaitGroup
	for i, c := range s.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Write(b)
		}()
	}
	wg.Wait()
	return t, errors.Join(errs...)
}

func (s *streamSender) close() error {
	var err error
	s.once.Do(func() {
		if s.ln != nil {
			s.ln.Close()
		}
		if s.shared {
			return
		}
		for _, c := range s.conns {
			err = errors.Join(err, c.Close())
		}
	})
	return err
}

type streamReceiver struct {
	c      io.ReadWriteCloser
	buf    []byte
	shared bool // the connection belongs to the sender (ping side)
}

func (r *streamReceiver) recv(ctx context.Context) ([]byte, int64, error) {
	if _, err := io.ReadFull(r.c, r.buf); err != nil {
		if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, 0, io.EOF
		}
		return nil, 0, err
	}
	return r.buf, ring.Now(), nil
}

func (r *streamReceiver) done() error { return nil }

func (r *streamReceiver) interrupt() {
	if d, ok := r.c.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(time.Now()) == nil {
		return
	}
	r.c.Close()
}

func (r *streamReceiver) close() error {
	if r.shared {
		return nil
	}
	return r.c.Close()
}

// The bare ping: the floor under every wake-up. A 128-byte file holds
//
//	off size
//	  0    4 the sequence number of the last ping (the futex word)
//	  4    4 1 once the writer is done
//	  8    8 the ping's send time, CLOCK_MONOTONIC ns
//
// The writer stores the time, then the number, then (futex mode) calls
// FUTEX_WAKE; a futex reader sleeps in FUTEX_WAIT on the number, a spin
// reader loads it in a loop: a cache line's trip from one core to
// another.
const bareSize = 128

type bareWords struct {
	f      *shm.File
	m      *shm.Mapping
	seq    *atomic.Uint32
	closed *atomic.Uint32
	ts     *atomic.Uint64
}

func mapBare(f *shm.File) (*bareWords, error) {
	m, err := shm.Map(f, bareSize, true)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("bare ping: %w", err)
	}
	b := m.Bytes()
	w := &bareWords{f: f, m: m}
	var e1, e2, e3 error
	w.seq, e1 = shm.Uint32At(b, 0)
	w.closed, e2 = shm.Uint32At(b, 4)
	w.ts, e3 = shm.Uint64At(b, 8)
	if err := errors.Join(e1, e2, e3); err != nil {
		w.unmap()
		return nil, fmt.Errorf("bare ping: %w", err)
	}
	return w, nil
}

func (w *bareWords) unmap() error {
	return errors.Join(w.m.Unmap(), w.f.Close())
}

type bareSender struct {
	*bareWords
	wake bool
	once sync.Once
}

func newBareSender(dir, name string, wake bool) (*bareSender, error) {
	f, err := shm.Create(filepath.Join(dir, name+".bare"), bareSize, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bare ping: %w", err)
	}
	w, err := mapBare(f)
	if err != nil {
		return nil, err
	}
	return &bareSender{bareWords: w, wake: wake}, nil
}

func (s *bareSender) connect() error { return nil }

func (s *bareSender) send(b []byte) (int64, error) {
	t := ring.Now()
	setSend(b, t)
	s.ts.Store(uint64(t))
	s.seq.Store(uint32(frameSeq(b)))
	if s.wake {
		shm.FutexWake(s.seq, math.MaxInt32)
	}
	return t, nil
}

func (s *bareSender) close() error {
	var err error
	s.once.Do(func() {
		s.closed.Store(1)
		s.seq.Add(1)
		shm.FutexWake(s.seq, math.MaxInt32)
		err = s.unmap()
	})
	return err
}

type bareReceiver struct {
	*bareWords
	spin bool
	last uint32
	buf  [benchHdr]byte
}

func openBareReceiver(ctx context.Context, dir, name string, spin bool) (*bareReceiver, error) {
	path := filepath.Join(dir, name+".bare")
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	for {
		f, err := shm.Open(path, true)
		if err == nil {
			w, err := mapBare(f)
			if err != nil {
				return nil, err
			}
			return &bareReceiver{bareWords: w, spin: spin, last: w.seq.Load()}, nil
		}
		if !errors.Is(err, os.ErrNotExist) || ctx.Err() != nil {
			return nil, fmt.Errorf("bare ping: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recv returns a 16-byte frame: the send time and the sequence number.
func (r *bareReceiver) recv(ctx context.Context) ([]byte, int64, error) {
	for i := 0; ; i++ {
		v := r.seq.Load()
		if v != r.last {
			at := ring.Now()
			if r.closed.Load() != 0 {
				return nil, 0, io.EOF
			}
			r.last = v
			setSend(r.buf[:], int64(r.ts.Load()))
			setSeq(r.buf[:], uint64(v))
			return r.buf[:], at, nil
		}
		if r.spin {
			if i&1023 == 0 && (ctx.Err() != nil || r.closed.Load() != 0) {
				return nil, 0, io.EOF
			}
			continue
		}
		if ctx.Err() != nil || r.closed.Load() != 0 {
			return nil, 0, io.EOF
		}
		shm.FutexWait(r.seq, v, waitSlice)
	}
}

func (r *bareReceiver) done() error  { return nil }
func (r *bareReceiver) interrupt()   {} // recv looks at its context every slice
func (r *bareReceiver) close() error { return r.unmap() }
