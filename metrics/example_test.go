package metrics_test

import (
	"fmt"
	"log"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/metrics"
	"github.com/framering/framering/producer"
)

// The README's metrics example: a writer's and a reader's collectors in
// one registry, served over HTTP.
func Example() {
	dir, _ := os.MkdirTemp("", "framering-example-")
	defer os.RemoveAll(dir)
	w, err := producer.Open("cam0", producer.Options{Dir: dir, MaxFrameBytes: 64})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Remove()
	r, err := consumer.Open("cam0", consumer.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	reg := prometheus.NewRegistry()
	if err := metrics.RegisterWriter(reg, w); err != nil { // w *producer.Writer
		log.Fatal(err)
	}
	if err := metrics.RegisterReader(reg, "detector", r); err != nil { // r *consumer.Reader
		log.Fatal(err)
	}
	srv, addr, err := metrics.Serve("127.0.0.1:0", reg) // port 0: any free port; addr says which
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	fmt.Println("serving /metrics over", addr.Network())
	// Output:
	// serving /metrics over tcp
}
