// Package bridge carries a ring to other hosts over NATS: an [Out] reads a
// ring on this host and publishes its frames on a NATS subject; an [In]
// subscribes to the subject and publishes the frames into a ring on its
// host. `framering bridge out|in` are thin commands over it;
// docs/BRIDGE.md is the full story (setup, wire format, metrics, figures).
//
// # Basics
//
//	out, err := bridge.NewOut(bridge.OutConfig{Ring: "cam0", Subject: "cams.cam0", NATS: bridge.Conn{URL: "nats://hub:4222"}})
//	go out.Run(ctx)
//
//	in, err := bridge.NewIn(bridge.InConfig{Ring: "cam0", Subject: "cams.cam0", NATS: bridge.Conn{URL: "nats://hub:4222"}})
//	err = in.Run(ctx) // until ctx ends
//
// # Delivery
//
// At most once, every loss counted ([OutStats], [InStats], the
// collectors). A frame reaches the remote ring whole (checked against its
// CRC-32C after reassembly) or not at all, with its source frame number
// (gaps are frames that did not cross, which the ring's readers count as
// dropped), shape, pixel format, metadata and capture time; its publish
// time is the source's, carried as wall clock and placed on this host's
// CLOCK_MONOTONIC. An Out reads in latest mode and never slows the ring's
// writer. Both ends wait for the NATS server and reconnect on their own.
//
// # Untrusted input
//
// Every message on the subject is untrusted: [In] validates every header
// field before use, bounds what it buffers and reassembles, checks JPEG
// dimensions before decoding, and counts and skips what it rejects. No
// message makes it panic or grow without bound (FuzzParse).
//
// # Concurrency
//
// Run may be called once at a time per Out or In (it returns an error
// otherwise, and may be called again after it returned). Stats and
// Collector are safe from any goroutine, during and after Run.
//
// # The ring API
//
// ring_out.go and ring_in.go are the only files that call packages
// consumer and producer.
package bridge
