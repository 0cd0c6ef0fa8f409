package bridge

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Conn says how a bridge connects to NATS. Every credential is optional;
// give at most one of User/Password, Token, CredsFile and NKeyFile. The
// bridge never logs a credential: URLs are logged with their user
// information removed.
type Conn struct {
	// URL is the server, or a comma-separated list of servers
	// (nats://host:4222, tls://host:4222). Empty means nats://127.0.0.1:4222.
	URL string
	// Name is the client name the server shows in its monitoring.
	Name string
	// User and Password authenticate with a user and password.
	User, Password string
	// Token authenticates with a token.
	Token string
	// CredsFile is a credentials file (a user JWT and its nkey seed), as
	// the nsc tool writes it.
	CredsFile string
	// NKeyFile is a file holding a user's nkey seed.
	NKeyFile string
	// TLSCA is a PEM file of the CAs to trust for the server's certificate;
	// TLSCert and TLSKey are the client's certificate and key for mutual
	// TLS. Giving any of them requires TLS.
	TLSCA, TLSCert, TLSKey string
	// MaxReconnects is how many times in a row the client tries to
	// reconnect after losing the server before it gives up (and Run
	// returns an error). Zero means for ever.
	MaxReconnects int
	// ReconnectWait is the pause between reconnect attempts to one server.
	// Zero means 500 ms.
	ReconnectWait time.Duration
	// PingInterval is how often the client pings the server to find a dead
	// connection; two missed pings close it and start reconnecting. Zero
	// means 5 s.
	PingInterval time.Duration
	// Options are added last, for anything else nats.go offers. The
	// bridge's own handlers (disconnect, reconnect, errors) and
	// ReconnectBufSize(-1) (nothing is queued while disconnected) must
	// stay: do not override them.
	Options []nats.Option
}

// Connection errors that a person must fix (as opposed to a server that is
// not reachable yet, which the bridge waits for).
var (
	// ErrConfig is returned for a configuration that cannot work (two
	// credentials, a missing subject, ...).
	ErrConfig = errors.New("invalid bridge configuration")
)

// events receives the connection's events.
type events struct {
	connected    func() // the first connection, when the server was not reachable at the start
	disconnected func(err error)
	reconnected  func()
	closed       func()
	asyncErr     func(sub *nats.Subscription, err error)
}

// options builds the nats.go options.
func (c *Conn) options(ev events) ([]nats.Option, error) {
	auth := 0
	for _, set := range []bool{c.User != "" || c.Password != "", c.Token != "", c.CredsFile != "", c.NKeyFile != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return nil, fmt.Errorf("%w: give one of user/password, token, credentials file and nkey file", ErrConfig)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, fmt.Errorf("%w: a TLS client certificate needs both the certificate and the key file", ErrConfig)
	}
	if c.MaxReconnects < 0 {
		return nil, fmt.Errorf("%w: max reconnects %d is negative", ErrConfig, c.MaxReconnects)
	}
	maxRec := c.MaxReconnects
	if maxRec == 0 {
		maxRec = -1 // nats.go: for ever
	}
	wait := c.ReconnectWait
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	ping := c.PingInterval
	if ping <= 0 {
		ping = 5 * time.Second
	}
	opts := []nats.Option{
		nats.MaxReconnects(maxRec),
		nats.ReconnectWait(wait),
		nats.ReconnectJitter(wait/5, wait/5),
		nats.PingInterval(ping),
		nats.MaxPingsOutstanding(2),
		nats.FlusherTimeout(10 * time.Second),
		// Nothing is queued while the connection is down: a frame sent then
		// fails at once and is counted, instead of arriving stale later.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { ev.disconnected(err) }),
		nats.ReconnectHandler(func(*nats.Conn) { ev.reconnected() }),
		nats.ConnectHandler(func(*nats.Conn) { ev.connected() }),
		nats.ClosedHandler(func(*nats.Conn) { ev.closed() }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) { ev.asyncErr(sub, err) }),
	}
	if c.Name != "" {
		opts = append(opts, nats.Name(c.Name))
	}
	switch {
	case c.User != "" || c.Password != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: nkey file %s: %v", ErrConfig, c.NKeyFile, err)
		}
		opts = append(opts, o)
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return append(opts, c.Options...), nil
}

func (c *Conn) url() string {
	if c.URL == "" {
		return "nats://127.0.0.1:4222"
	}
	return c.URL
}

// connect dials the server. A server that cannot be reached yet is not an
// error: the client keeps trying in the background (waiting reports it).
// Anything else (bad credentials, TLS, a bad URL) is.
func (c *Conn) connect(ev events) (nc *nats.Conn, waiting bool, err error) {
	opts, err := c.options(ev)
	if err != nil {
		return nil, false, err
	}
	nc, err = nats.Connect(c.url(), opts...)
	if err == nil {
		return nc, false, nil
	}
	if !errors.Is(err, nats.ErrNoServers) {
		return nil, false, fmt.Errorf("connect to %s: %w", redact(c.url()), err)
	}
	nc, err = nats.Connect(c.url(), append(opts, nats.RetryOnFailedConnect(true))...)
	if err != nil {
		return nil, false, fmt.Errorf("connect to %s: %w", redact(c.url()), err)
	}
	return nc, true, nil
}

// redact removes user information (user:password@) from every URL of a
// comma-separated server list, for logs and errors.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = nil
			p = u.String()
		} else if at := strings.LastIndex(p, "@"); err != nil && at >= 0 {
			p = p[at+1:] // unparsable: drop everything up to the last @
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// link is the connection state both ends keep: what Stats reports of the
// connection, and handlers that stay quiet while Run returns.
type link struct {
	side                    string // "out" or "in", for the log
	logf                    func(string, ...any)
	disconnects, reconnects atomic.Uint64
	connected               atomic.Bool
	closing                 atomic.Bool // Run is returning: handlers stay quiet
	nc                      atomic.Pointer[nats.Conn]
}

// dial connects as c says, counting and logging the connection's events.
// asyncErr, if set, may take an asynchronous error of the client (true:
// handled); the others are logged. The returned channel closes when the
// connection is closed for good. The caller calls hangUp when Run returns.
func (l *link) dial(c *Conn, asyncErr func(err error) bool) (*nats.Conn, <-chan struct{}, error) {
	closed := make(chan struct{})
	nc, waiting, err := c.connect(events{
		disconnected: func(err error) {
			l.connected.Store(false)
			if l.closing.Load() {
				return
			}
			l.disconnects.Add(1)
			l.logf("bridge %s: NATS connection lost (%v); reconnecting", l.side, errText(err))
		},
		reconnected: func() {
			l.connected.Store(true)
			l.reconnects.Add(1)
			url := ""
			if nc := l.nc.Load(); nc != nil {
				url = " to " + redact(nc.ConnectedUrlRedacted())
			}
			l.logf("bridge %s: NATS reconnected%s", l.side, url)
		},
		connected: func() {
			l.connected.Store(true)
			l.logf("bridge %s: connected to NATS", l.side)
		},
		closed: func() { close(closed) },
		asyncErr: func(_ *nats.Subscription, err error) {
			if l.closing.Load() || (asyncErr != nil && asyncErr(err)) {
				return
			}
			l.logf("bridge %s: NATS: %v", l.side, err)
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("bridge %s: %w", l.side, err)
	}
	l.nc.Store(nc)
	l.closing.Store(false)
	l.connected.Store(!waiting)
	if waiting {
		l.logf("bridge %s: NATS server %s not reachable yet; waiting for it", l.side, redact(c.url()))
	} else {
		l.logf("bridge %s: connected to NATS %s", l.side, redact(nc.ConnectedUrlRedacted()))
	}
	return nc, closed, nil
}

// hangUp closes the connection quietly.
func (l *link) hangUp(nc *nats.Conn) {
	l.closing.Store(true)
	nc.Close()
}
