package metrics

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the HTTP handler of g's metrics: the text format, or
// protobuf (which carries native histograms) for a Prometheus that asks
// for it. A collector that fails is logged and the others still served.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      log.New(os.Stderr, "framering metrics: ", log.LstdFlags),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Serve listens on addr ("host:port"; port 0 picks a free one) and serves
// g's metrics on /metrics in the background until srv.Close or
// srv.Shutdown. It binds before it returns, so a port in use is an error
// here, and bound is the actual address.
//
//	reg := prometheus.NewRegistry()
//	metrics.RegisterWriter(reg, w)
//	srv, addr, err := metrics.Serve(":9731", reg)
func Serve(addr string, g prometheus.Gatherer) (srv *http.Server, bound net.Addr, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics endpoint %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", Handler(g))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<html><head><title>framering</title></head><body><a href="/metrics">/metrics</a></body></html>`)
	})
	srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) // returns http.ErrServerClosed at Close
	return srv, ln.Addr(), nil
}
