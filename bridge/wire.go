package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/framering/framering/ring"
)

// The wire format: every NATS message the bridge publishes is one chunk of
// one frame, or a notice, behind a fixed header of HeaderLen bytes,
// little-endian (docs/BRIDGE.md has the same table):
//
//	off size field
//	  0    4 magic      "FRBR"
//	  4    1 version    1
//	  5    1 kind       1 chunk, 2 notice "source writer gone", 3 notice "bridge stopped"
//	  6    1 encoding   1 raw, 2 JPEG (chunks); 0 in notices
//	  7    1 flags      0
//	  8    4 chunk      index of this chunk, < count
//	 12    4 count      chunks of the frame, >= 1
//	 16    4 chunkSize  body bytes of every chunk but the last; chunk i holds
//	                    wire payload bytes [i*chunkSize, min((i+1)*chunkSize, total))
//	 20    4 total      wire payload bytes of the frame: encoded data, then metadata
//	 24    4 crc        CRC-32C (Castagnoli) of the whole wire payload
//	 28    4 format     ring pixel format (1 gray8 ... 8 raw)
//	 32    8 stream     hash of the stream name: which source this is
//	 40    8 session    random, new each time a bridge out starts
//	 48    8 seq        frames this session tried to send, this one included (1, 2, ...)
//	 56    8 frame      the frame's number in the source ring
//	 64    8 generation the source ring's writer generation
//	 72    4 width      pixels (raw: any value)
//	 76    4 height     pixels (raw: any value)
//	 80    4 channels
//	 84    4 stride     bytes between rows of the data as carried (JPEG: packed rows after decoding)
//	 88    4 dataLen    bytes of the frame's data in the ring after decoding
//	 92    4 metaLen    metadata bytes, at the end of the wire payload
//	 96    8 capture    source CLOCK_MONOTONIC ns at capture
//	104    8 published  source CLOCK_MONOTONIC ns at publish
//	112    8 wall       source wall clock (Unix ns) at publish
//	120    8 sent       wall clock (Unix ns) when the bridge out sent the frame
//
// A notice carries magic, version, kind, stream, session, seq (the last
// seq sent) and sent; every other field is zero.
const HeaderLen = 128

// Wire constants.
const (
	wireVersion = 1

	kindChunk      = 1
	kindSourceGone = 2
	kindStopped    = 3
)

var wireMagic = [4]byte{'F', 'R', 'B', 'R'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Limits that no header may exceed, whatever the receiver's configuration.
const (
	maxSide   = 1 << 20 // width and height, as ring.FrameInfo allows
	maxChunks = 1 << 20
	maxMeta   = 1 << 20 // ring.Geometry allows no more metadata per slot
)

// header is a decoded chunk or notice header.
type header struct {
	kind, encoding                  uint8
	chunk, count, chunkSize, total  uint32
	crc                             uint32
	format                          ring.PixelFormat
	stream, session, seq            uint64
	frame, generation               uint64
	width, height, channels, stride uint32
	dataLen, metaLen                uint32
	capture, published, wall, sent  int64
}

// put encodes h into b[:HeaderLen].
func (h *header) put(b []byte) {
	_ = b[HeaderLen-1]
	le := binary.LittleEndian
	copy(b[0:4], wireMagic[:])
	b[4], b[5], b[6], b[7] = wireVersion, h.kind, h.encoding, 0
	le.PutUint32(b[8:], h.chunk)
	le.PutUint32(b[12:], h.count)
	le.PutUint32(b[16:], h.chunkSize)
	le.PutUint32(b[20:], h.total)
	le.PutUint32(b[24:], h.crc)
	le.PutUint32(b[28:], uint32(h.format))
	le.PutUint64(b[32:], h.stream)
	le.PutUint64(b[40:], h.session)
	le.PutUint64(b[48:], h.seq)
	le.PutUint64(b[56:], h.frame)
	le.PutUint64(b[64:], h.generation)
	le.PutUint32(b[72:], h.width)
	le.PutUint32(b[76:], h.height)
	le.PutUint32(b[80:], h.channels)
	le.PutUint32(b[84:], h.stride)
	le.PutUint32(b[88:], h.dataLen)
	le.PutUint32(b[92:], h.metaLen)
	le.PutUint64(b[96:], uint64(h.capture))
	le.PutUint64(b[104:], uint64(h.published))
	le.PutUint64(b[112:], uint64(h.wall))
	le.PutUint64(b[120:], uint64(h.sent))
}

// errWire is what every rejected message wraps; wireError says why, as a
// metric label.
var errWire = errors.New("bridge message rejected")

type wireError struct {
	reason string // chunk error reason: foreign, version, malformed, too_large
	msg    string
}

func (e *wireError) Error() string { return fmt.Sprintf("%v (%s): %s", errWire, e.reason, e.msg) }
func (e *wireError) Unwrap() error { return errWire }

func reject(reason, format string, args ...any) error {
	return &wireError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// parse decodes and validates a message's header against itself and the
// message length. limit is the largest frame (data or wire payload) the
// receiver accepts. Every field is untrusted network input: parse never
// panics and returns a *wireError for anything out of range; body is the
// chunk's part of the wire payload.
func parse(msg []byte, limit int) (h header, body []byte, err error) {
	if len(msg) < 8 || [4]byte(msg[0:4]) != wireMagic {
		return h, nil, reject("foreign", "%d bytes without the bridge's magic", len(msg))
	}
	if msg[4] != wireVersion {
		return h, nil, reject("version", "wire version %d, this bridge speaks %d", msg[4], wireVersion)
	}
	if len(msg) < HeaderLen {
		return h, nil, reject("malformed", "%d bytes, shorter than the %d-byte header", len(msg), HeaderLen)
	}
	le := binary.LittleEndian
	h = header{
		kind:       msg[5],
		encoding:   msg[6],
		chunk:      le.Uint32(msg[8:]),
		count:      le.Uint32(msg[12:]),
		chunkSize:  le.Uint32(msg[16:]),
		total:      le.Uint32(msg[20:]),
		crc:        le.Uint32(msg[24:]),
		format:     ring.PixelFormat(le.Uint32(msg[28:])),
		stream:     le.Uint64(msg[32:]),
		session:    le.Uint64(msg[40:]),
		seq:        le.Uint64(msg[48:]),
		frame:      le.Uint64(msg[56:]),
		generation: le.Uint64(msg[64:]),
		width:      le.Uint32(msg[72:]),
		height:     le.Uint32(msg[76:]),
		channels:   le.Uint32(msg[80:]),
		stride:     le.Uint32(msg[84:]),
		dataLen:    le.Uint32(msg[88:]),
		metaLen:    le.Uint32(msg[92:]),
		capture:    int64(le.Uint64(msg[96:])),
		published:  int64(le.Uint64(msg[104:])),
		wall:       int64(le.Uint64(msg[112:])),
		sent:       int64(le.Uint64(msg[120:])),
	}
	body = msg[HeaderLen:]
	if msg[7] != 0 {
		return h, nil, reject("malformed", "flags %#x, want 0", msg[7])
	}
	if h.session == 0 {
		return h, nil, reject("malformed", "session 0")
	}
	switch h.kind {
	case kindSourceGone, kindStopped:
		if len(body) != 0 {
			return h, nil, reject("malformed", "notice with %d bytes of body", len(body))
		}
		return h, nil, nil
	case kindChunk:
	default:
		return h, nil, reject("malformed", "message kind %d", h.kind)
	}
	if h.seq == 0 || h.frame == 0 || h.frame >= 1<<63 {
		return h, nil, reject("malformed", "seq %d frame %d", h.seq, h.frame)
	}
	if h.encoding != encRaw && h.encoding != encJPEG {
		return h, nil, reject("malformed", "encoding %d", h.encoding)
	}
	if int64(h.dataLen) > int64(limit) || h.metaLen > maxMeta || int64(h.total) > 2*int64(limit)+maxMeta {
		return h, nil, reject("too_large", "frame of %d bytes (%d on the wire), the limit is %d", h.dataLen, h.total, limit)
	}
	if h.metaLen > h.total || h.dataLen == 0 {
		return h, nil, reject("malformed", "data %d, metadata %d, wire payload %d bytes", h.dataLen, h.metaLen, h.total)
	}
	if h.count == 0 || h.count > maxChunks || h.chunk >= h.count || h.chunkSize == 0 {
		return h, nil, reject("malformed", "chunk %d of %d, chunk size %d", h.chunk, h.count, h.chunkSize)
	}
	if want := (uint64(h.total) + uint64(h.chunkSize) - 1) / uint64(h.chunkSize); want != uint64(h.count) {
		return h, nil, reject("malformed", "%d chunks of %d bytes cannot hold %d bytes", h.count, h.chunkSize, h.total)
	}
	off := uint64(h.chunk) * uint64(h.chunkSize)
	want := min(uint64(h.chunkSize), uint64(h.total)-off)
	if uint64(len(body)) != want {
		return h, nil, reject("malformed", "chunk %d of %d has %d bytes, want %d", h.chunk, h.count, len(body), want)
	}
	if err := h.checkFrame(); err != nil {
		return h, nil, err
	}
	return h, body, nil
}

// checkFrame validates the frame description: the shape the receiver will
// publish must be one the ring accepts, and for raw data the carried
// length must be the shape's.
func (h *header) checkFrame() error {
	if !h.format.Valid() {
		return reject("malformed", "pixel format %d", uint32(h.format))
	}
	if h.format != ring.Raw && (h.width == 0 || h.height == 0 || h.width > maxSide || h.height > maxSide || h.channels != uint32(h.format.Channels())) {
		return reject("malformed", "%dx%dx%d %v", h.width, h.height, h.channels, h.format)
	}
	if h.encoding == encRaw {
		if h.total-h.metaLen != h.dataLen {
			return reject("malformed", "raw data of %d bytes carried in %d", h.dataLen, h.total-h.metaLen)
		}
		if h.format != ring.Raw {
			row := uint64(h.width) * uint64(h.channels) * uint64(h.format.BytesPerSample())
			if uint64(h.stride) < row || uint64(h.stride)*uint64(h.height) != uint64(h.dataLen) {
				return reject("malformed", "%dx%dx%d %v with stride %d is not %d bytes", h.width, h.height, h.channels, h.format, h.stride, h.dataLen)
			}
		}
		return nil
	}
	// JPEG: decoded to packed rows of one of the formats it can carry.
	if !jpegFormat(h.format) {
		return reject("malformed", "JPEG cannot carry %v", h.format)
	}
	if uint64(h.stride) != uint64(h.width)*uint64(h.channels) || uint64(h.stride)*uint64(h.height) != uint64(h.dataLen) {
		return reject("malformed", "JPEG %dx%dx%d with stride %d is not %d bytes", h.width, h.height, h.channels, h.stride, h.dataLen)
	}
	return nil
}

// sameFrame reports whether two chunk headers describe the same frame:
// every field but the chunk index.
func sameFrame(a, b *header) bool {
	x, y := *a, *b
	x.chunk, y.chunk = 0, 0
	return x == y
}
