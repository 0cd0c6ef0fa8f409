package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/framering/framering/bridge"
	"github.com/framering/framering/ring"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// natsFlags are the connection flags both bridge commands share.
type natsFlags struct {
	url, name                      string
	user, passwordFile, tokenFile  string
	creds, nkey                    string
	tlsCA, tlsCert, tlsKey         string
	maxReconnects                  int
	reconnectWait, hungAfter       time.Duration
	ring, dir, subject, stream     string
	metrics                        string
	quiet                          bool
	encoding                       string
	quality, maxChunk              int
	slots, maxFrameBytes, frameLim int
}

var bridgeOutOpts, bridgeInOpts natsFlags

var bridgeCmd = &cobra.Command{
	Use:   "bridge",
	Short: "Carry a ring to other hosts over NATS (bridge out, bridge in)",
	Long: `bridge carries frames between hosts through a NATS server: 'bridge out'
reads a ring on this host and publishes its frames on a subject; 'bridge in'
subscribes to the subject and publishes the frames into a ring on its host,
which local readers use like any other. Several 'bridge in' may follow one
subject. Delivery is at most once: frames the network or a slow end cannot
carry are dropped and counted, never delivered partly. See docs/BRIDGE.md.`,
	Example: `  # camera host
  framering bridge out --ring cam0 --nats nats://hub:4222 --subject cams.cam0
  # other host
  framering bridge in --nats nats://hub:4222 --subject cams.cam0 --ring cam0`,
}

var bridgeOutCmd = &cobra.Command{
	Use:   "out --ring NAME --subject SUBJECT [--nats URL]",
	Short: "Publish a ring's frames on a NATS subject",
	Long: `bridge out reads ring NAME in latest mode (it never slows or blocks the
ring's writer: frames it cannot send in time are skipped and counted) and
publishes every frame it reads on SUBJECT, split into chunks no larger than
the server's max_payload. It waits for the ring to appear and for the
server, reconnects on its own, and runs until SIGINT/SIGTERM. A stats line
goes to stderr every second.`,
	Example: `  framering bridge out --ring cam0 --nats nats://hub:4222 --subject cams.cam0
  framering bridge out --ring cam0 --subject cams.cam0 --encoding jpeg --quality 85 --metrics :9740`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error { return runBridgeOut(&bridgeOutOpts) },
}

var bridgeInCmd = &cobra.Command{
	Use:   "in --subject SUBJECT --ring NAME [--nats URL]",
	Short: "Publish the frames of a NATS subject into a ring",
	Long: `bridge in subscribes to SUBJECT and publishes every frame that arrives whole
into ring NAME on this host, with the frame's number, shape, pixel format,
metadata and capture time. Frames that arrive incomplete or corrupt are
dropped and counted. The ring is created when the first frame arrives,
sized by it (or at start with --max-frame-bytes). It runs until
SIGINT/SIGTERM, then closes the ring's writer (readers see it gone).`,
	Example: `  framering bridge in --nats nats://hub:4222 --subject cams.cam0 --ring cam0
  framering bridge in --subject cams.cam0 --ring cam0 --creds ~/.nats/user.creds --metrics :9741`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error { return runBridgeIn(&bridgeInOpts) },
}

func init() {
	for _, c := range []struct {
		cmd *cobra.Command
		o   *natsFlags
	}{{bridgeOutCmd, &bridgeOutOpts}, {bridgeInCmd, &bridgeInOpts}} {
		f, o := c.cmd.Flags(), c.o
		f.StringVar(&o.ring, "ring", "", "ring name (required)")
		f.StringVar(&o.dir, "dir", ring.DefaultDir, "shared-memory directory holding the rings")
		f.StringVar(&o.subject, "subject", "", "NATS subject of the stream (required), e.g. cams.cam0")
		f.StringVar(&o.url, "nats", "", "NATS server `URL`s, comma-separated (default $NATS_URL, else nats://127.0.0.1:4222)")
		f.StringVar(&o.name, "name", "", "client name shown by the server's monitoring (default framering-bridge-out/in)")
		f.StringVar(&o.user, "user", "", "NATS user; the password comes from --password-file or $NATS_PASSWORD")
		f.StringVar(&o.passwordFile, "password-file", "", "read the NATS password from `FILE` (first line)")
		f.StringVar(&o.tokenFile, "token-file", "", "read a NATS token from `FILE` (or set $NATS_TOKEN)")
		f.StringVar(&o.creds, "creds", "", "NATS credentials `FILE` (user JWT and nkey seed)")
		f.StringVar(&o.nkey, "nkey", "", "NATS nkey seed `FILE`")
		f.StringVar(&o.tlsCA, "tls-ca", "", "PEM `FILE` of the CAs to trust for the server's certificate")
		f.StringVar(&o.tlsCert, "tls-cert", "", "client certificate `FILE` for mutual TLS (with --tls-key)")
		f.StringVar(&o.tlsKey, "tls-key", "", "client key `FILE` for mutual TLS")
		f.IntVar(&o.maxReconnects, "max-reconnects", 0, "give up after N failed reconnects in a row (0: never)")
		f.DurationVar(&o.reconnectWait, "reconnect-wait", 500*time.Millisecond, "pause between reconnect attempts")
		f.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics of the bridge on `ADDR` (host:port)")
		f.BoolVarP(&o.quiet, "quiet", "q", false, "no stats line on stderr")
		bridgeCmd.AddCommand(c.cmd)
	}
	f, o := bridgeOutCmd.Flags(), &bridgeOutOpts
	f.StringVar(&o.encoding, "encoding", "raw", "raw (lossless, any pixel format) or jpeg (gray8, bgr8, rgb8, bgra8, rgba8)")
	f.IntVar(&o.quality, "quality", 90, "JPEG quality, 1 to 100")
	f.StringVar(&o.stream, "stream", "", "stream name receivers tell this stream by (default RING@HOSTNAME)")
	f.IntVar(&o.maxChunk, "max-chunk", 0, "largest NATS message in bytes, below the server's max_payload (0: max_payload)")
	f.DurationVar(&o.hungAfter, "hung-after", time.Second, "the ring's writer counts as gone when its heartbeat is older than this")
	f, o = bridgeInCmd.Flags(), &bridgeInOpts
	f.IntVar(&o.slots, "slots", 8, "slot count of the ring, a power of two >= 2")
	f.IntVar(&o.maxFrameBytes, "max-frame-bytes", 0, "create the ring at start with slots of N bytes; larger frames are dropped (0: size it by the frames)")
	f.IntVar(&o.frameLim, "frame-limit", 0, "largest frame accepted in bytes (0: --max-frame-bytes, else 64 MiB)")
	f.StringVar(&o.stream, "stream", "", "accept only this stream (the sender's --stream; default: follow the first one heard)")
	root.AddCommand(bridgeCmd)
}

// conn builds the connection options from the flags and the environment.
// Secrets come from files or the environment only, never from arguments.
func (o *natsFlags) conn(side string) (bridge.Conn, error) {
	c := bridge.Conn{
		URL: o.url, Name: o.name, User: o.user, CredsFile: o.creds, NKeyFile: o.nkey,
		TLSCA: o.tlsCA, TLSCert: o.tlsCert, TLSKey: o.tlsKey,
		MaxReconnects: o.maxReconnects, ReconnectWait: o.reconnectWait,
	}
	if c.URL == "" {
		c.URL = os.Getenv("NATS_URL")
	}
	if c.Name == "" {
		c.Name = "framering-bridge-" + side
	}
	if o.maxReconnects < 0 || o.reconnectWait < 0 {
		return c, usagef("bridge %s: --max-reconnects and --reconnect-wait must not be negative", side)
	}
	var err error
	if o.passwordFile != "" {
		if c.Password, err = readSecret(o.passwordFile); err != nil {
			return c, fmt.Errorf("bridge %s: --password-file: %w", side, err)
		}
	} else {
		c.Password = os.Getenv("NATS_PASSWORD")
	}
	if c.Password != "" && c.User == "" {
		return c, usagef("bridge %s: a password (--password-file or $NATS_PASSWORD) needs --user", side)
	}
	if o.tokenFile != "" {
		if c.Token, err = readSecret(o.tokenFile); err != nil {
			return c, fmt.Errorf("bridge %s: --token-file: %w", side, err)
		}
	} else if c.User == "" && c.CredsFile == "" && c.NKeyFile == "" {
		c.Token = os.Getenv("NATS_TOKEN")
	}
	return c, nil
}

// errSecret marks a password or token file that could not be used.
var errSecret = errors.New("no secret")

// readSecret reads the first line of a file holding a password or token.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errSecret, err)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimRight(s, "\r")
	if s == "" {
		return "", fmt.Errorf("%w: the first line of %s is empty", errSecret, path)
	}
	return s, nil
}

func (o *natsFlags) check(side string) error {
	if o.ring == "" || o.subject == "" {
		return usagef("bridge %s: --ring NAME and --subject SUBJECT are required", side)
	}
	if err := ring.CheckName(o.ring); err != nil {
		return usagef("bridge %s: --ring: %v", side, err)
	}
	return nil
}

// bridgeErr makes the bridge's configuration errors usage errors; what to
// do about the others is added by advice, like for every command.
func bridgeErr(side string, err error) error {
	if errors.Is(err, bridge.ErrConfig) {
		return usagef("bridge %s: %v", side, err)
	}
	return err
}

// bridgeAdvice is advice for the errors only the bridge commands meet
// (advice asks it first), or "".
func bridgeAdvice(err error) string {
	switch {
	case errors.Is(err, errSecret):
		return "give a file the bridge's user can read, holding the secret on its first line"
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked),
		strings.Contains(err.Error(), "Authorization Violation"):
		return "check --user with --password-file or $NATS_PASSWORD, --token-file or $NATS_TOKEN, --creds or --nkey"
	case strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:"):
		return "check --tls-ca (the CA that signed the server's certificate), --tls-cert and --tls-key, and use a tls:// URL"
	case errors.Is(err, bridge.ErrUnsupported):
		return "run the bridge with --encoding raw for this ring"
	}
	return ""
}

func logLine(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func runBridgeOut(o *natsFlags) error {
	if err := o.check("out"); err != nil {
		return err
	}
	enc, err := bridge.ParseEncoding(o.encoding)
	if err != nil {
		return usagef("bridge out: --encoding: %v", err)
	}
	if o.quality < 1 || o.quality > 100 {
		return usagef("bridge out: --quality %d is not in [1, 100]", o.quality)
	}
	if o.hungAfter <= 0 {
		return usagef("bridge out: --hung-after %v: give a positive duration such as 1s", o.hungAfter)
	}
	c, err := o.conn("out")
	if err != nil {
		return err
	}
	b, err := bridge.NewOut(bridge.OutConfig{Ring: o.ring, Dir: o.dir, NATS: c, Subject: o.subject, Stream: o.stream,
		Encoding: enc, Quality: o.quality, MaxChunk: o.maxChunk, HungAfter: o.hungAfter, Logf: logLine})
	if err != nil {
		return bridgeErr("out", err)
	}
	return runEnd("out", o, b.Collector(), b.Run, func() string {
		st := b.Stats()
		return fmt.Sprintf("bridge out %q: sent %d frames (%s), dropped: skipped %d, disconnected %d, publish errors %d; latency p50 %v%s",
			o.ring, st.Sent, mb(st.Bytes), st.Skipped, st.Disconnected, st.PublishErrors, fmtDur(st.Latency.Quantile(0.5)), connState(st.Connected))
	}, func() string {
		st := b.Stats()
		return fmt.Sprintf("bridge out: read %d frames, sent %d (%s in %d messages), dropped %d (skipped %d, disconnected %d, publish errors %d), reconnects %d",
			st.Read, st.Sent, mb(st.Bytes), st.Messages, st.Dropped(), st.Skipped, st.Disconnected, st.PublishErrors, st.Reconnects)
	})
}

// runEnd runs one end of a bridge until SIGINT/SIGTERM, serving collector
// on --metrics and printing line to stderr every second (unless -q), then
// summary to stdout.
func runEnd(side string, o *natsFlags, collector prometheus.Collector, run func(context.Context) error, line, summary func() string) error {
	ctx, stop := signalContext()
	defer stop()
	reg, stopMetrics, err := startMetrics(o.metrics)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if reg != nil {
		if err := reg.Register(collector); err != nil {
			return fmt.Errorf("bridge %s: metrics: %w", side, err)
		}
	}
	done := statsLoop(ctx, o.quiet, line)
	err = run(ctx)
	stop()
	<-done
	fmt.Fprintln(os.Stdout, summary())
	return bridgeErr(side, err)
}

func runBridgeIn(o *natsFlags) error {
	if err := o.check("in"); err != nil {
		return err
	}
	if err := (ring.Geometry{Slots: o.slots, PayloadCap: 1}).Check(); err != nil {
		return usagef("bridge in: --slots: %v", err)
	}
	if o.maxFrameBytes < 0 || o.frameLim < 0 {
		return usagef("bridge in: --max-frame-bytes and --frame-limit must not be negative")
	}
	c, err := o.conn("in")
	if err != nil {
		return err
	}
	b, err := bridge.NewIn(bridge.InConfig{Ring: o.ring, Dir: o.dir, Slots: o.slots, MaxFrameBytes: o.maxFrameBytes, FrameLimit: o.frameLim,
		NATS: c, Subject: o.subject, Stream: o.stream, Logf: logLine})
	if err != nil {
		return bridgeErr("in", err)
	}
	return runEnd("in", o, b.Collector(), b.Run, func() string {
		st := b.Stats()
		return fmt.Sprintf("bridge in %q: received %d frames (%s), dropped: lost %d, incomplete %d, corrupt %d, other %d; bad messages %d; latency p50 %v p99 %v%s",
			o.ring, st.Delivered, mb(st.Bytes), st.Lost, st.Incomplete, st.Corrupt, st.TooLarge+st.RingErrors, sum(st.ChunkErrors),
			fmtDur(st.Latency.Quantile(0.5)), fmtDur(st.Latency.Quantile(0.99)), connState(st.Connected))
	}, func() string {
		st := b.Stats()
		return fmt.Sprintf("bridge in: received %d frames, dropped %d (lost %d, incomplete %d, corrupt %d, too large %d, ring errors %d), bad messages %d, slow consumer events %d, reconnects %d",
			st.Delivered, st.Dropped(), st.Lost, st.Incomplete, st.Corrupt, st.TooLarge, st.RingErrors, sum(st.ChunkErrors), st.SlowConsumer, st.Reconnects)
	})
}

// statsLoop prints line() to stderr every second until ctx ends; the
// returned channel closes when it has stopped.
func statsLoop(ctx context.Context, quiet bool, line func() string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if quiet {
			<-ctx.Done()
			return
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Fprintln(os.Stderr, line())
			}
		}
	}()
	return done
}

func connState(up bool) string {
	if up {
		return ""
	}
	return ", NATS disconnected"
}

func mb(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}
