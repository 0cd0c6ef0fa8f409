package metrics

import (
	"errors"
	"net"
	"net/http"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/producer"
	"github.com/prometheus/client_golang/prometheus"
)

var errTODO = errors.New("metrics: not implemented yet")

// RegisterWriter registers the collectors of a writer into reg.
func RegisterWriter(reg prometheus.Registerer, w *producer.Writer) error { return errTODO }

// RegisterReader registers the collectors of a reader named reader (a
// label value) into reg.
func RegisterReader(reg prometheus.Registerer, reader string, r *consumer.Reader) error {
	return errTODO
}

// Serve binds addr synchronously (so a port in use is an error here) and
// serves g's metrics on /metrics in the background until srv.Close.
func Serve(addr string, g prometheus.Gatherer) (srv *http.Server, bound net.Addr, err error) {
	return nil, nil, errTODO
}
