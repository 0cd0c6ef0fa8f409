// Package preview is a small live monitor of the rings on a host, as an
// http.Handler a program can embed (framering view --http serves it):
//
//   - an index of every ring in the directory: writer state and pid,
//     publish rate, geometry, the newest frame's shape and age, generation;
//     refreshed every second;
//   - a page per ring: its newest frame scaled to the window, the frame's
//     metadata beside it (indented JSON, text, or a hex dump), counters that
//     say what the preview did with every frame, pause, and a PNG snapshot
//     of the frame shown, at full size.
//
// # Endpoints
//
//	GET /                               the index page
//	GET /view/{ring}                    the page of one ring
//	GET /api/rings                      the index as JSON (Index)
//	GET /api/rings/{ring}               the ring and its preview's counters (RingStats)
//	GET /api/rings/{ring}/frame.jpg     the newest picture; ?after=SEQ waits (up to 10 s, then 204)
//	                                    for one newer than picture SEQ (header X-Preview-Seq);
//	                                    the frame's number and metadata come in headers
//	GET /api/rings/{ring}/stream.mjpg   the pictures as MJPEG, for players and <img>
//	GET /api/rings/{ring}/snapshot.png  the newest frame (?frame=N: frame N, if still held) as PNG
//	GET /api/rings/{ring}/meta          the newest frame's (?frame=N) metadata (MetaView)
//
// Static files are embedded; the page loads nothing from elsewhere, and
// every URL is relative, so the handler works under a prefix
// (http.StripPrefix).
//
// # How frames reach the page
//
// A ring's reader is opened on the first request for it and closed after
// Options.Idle without one. It is a consumer.Latest reader: it reads the
// newest frame into a buffer of its own at most Options.MaxFPS times a
// second, while a page or stream watches, converts it (scaled down to
// Options.MaxSide, every pixel format to RGB or gray) and encodes it as
// JPEG. The ring never waits for the preview (no reader ever slows a writer),
// and the preview never waits for a client: it keeps the newest picture,
// and each client takes the newest one when it is ready for one. A slow
// browser gets fewer pictures, not older ones.
//
// The page fetches pictures one at a time (frame.jpg?after=SEQ, a long
// poll) rather than playing the MJPEG stream: each picture comes with its
// frame number in the headers, so the metadata, the pause and the snapshot
// refer to exactly the frame on screen, and the browser asks for the next
// picture only when it has shown the last, so nothing queues anywhere.
// The MJPEG stream is there for other tools.
//
// # Counters
//
// Every frame published in the reader's window is counted once (Counters):
// read by the preview, skipped by the preview (the Latest reader passed
// over it for a newer one, because of the MaxFPS pacing or while encoding),
// passed over while nobody watched, or lost to a ring drop (overwritten or
// corrupt: not the preview's choice). A frame's way to a client is timed in
// three parts that do not overlap: the time it waited in the ring while the
// preview paced itself or encoded (publish to the start of the read), the
// transport (publish, or the read's start if the frame was already there, to
// the read complete: what a blocking reader such as recv measures), and the
// preview delay (read to the picture written to a client). The pictures
// clients missed for being slower than the preview are counted apart.
//
// # Snapshots
//
// The preview keeps the bytes of its last 2 to 8 frames (as many as fit 32
// MiB). snapshot.png?frame=N encodes frame N as it is in the ring: gray8,
// gray16 (16-bit), bgr8 and rgb8 pixel for pixel, bgra8 and rgba8 with
// their alpha; yuyv converted to RGB. A frame no longer held gives 410; the
// page fetches the PNG of the frame it shows when it pauses. Raw frames are
// not images: their pictures are a panel with the start of their bytes,
// and snapshot.png gives 415.
package preview
