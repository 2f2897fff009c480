// Package metrics exposes what tcpstate sees as Prometheus metrics (--metrics ADDR): the
// endpoints in each state right now, the diagnoses raised, the packets captured and dropped and
// the connections tracked, so that a monitoring system can gather them from every sensor and
// alert (CLOSE_WAIT piling up on a port, SYNs going unanswered).
//
// The collector is fed by a sink of the run (live or files; cmd/tcpstate's fleet), from the
// run's goroutine: Refresh with the connections in the flow tables and the counters at each
// tick, Finished with each connection written out and forgotten. A scrape reads the figures of
// the latest refresh under a lock, so it never sees half of one, and never touches the tables.
//
// Label cardinality is bounded whatever the traffic: states (11) × sides (2), diagnosis
// identifiers × sides, capture workers, and only the server ports the user named
// (--metrics-ports); never addresses or other ports.
package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/tracker"
)

// Collector is the tcpstate metrics: a prometheus.Collector whose values the run sets.
type Collector struct {
	mu    sync.Mutex
	ports []uint16 // --metrics-ports, sorted

	// Set by Update: the latest refresh.
	endpoints     [2][numStates]float64
	portEndpoints map[uint16]*[2][numStates]float64
	tracked       float64
	portTracked   map[uint16]float64
	capture       []capture.Stats // per capture worker
	started       uint64

	// Counted as they happen.
	finished, evicted, timedOut uint64
	portFinished                map[uint16]uint64
	diag                        map[diagKey]uint64
	portDiag                    map[portDiagKey]uint64
	// counted: the diagnoses already counted for each connection not finished yet (by ID), as
	// a bit per identifier (ids), so that a diagnosis is counted once per connection however
	// many refreshes see it. Every connection ends through Finished, which forgets it.
	counted map[uint64]uint64
	ids     map[string]uint
}

const numStates = int(tracker.TimeWait) + 1

type diagKey struct {
	id   string
	side tracker.Side
}

type portDiagKey struct {
	port uint16
	diagKey
}

var (
	descEndpoints = prometheus.NewDesc("tcpstate_endpoints",
		"Endpoints of the connections tracked now, by TCP state (as ss would show it on that host) and side (client: sent the first SYN).",
		[]string{"state", "side"}, nil)
	descPortEndpoints = prometheus.NewDesc("tcpstate_port_endpoints",
		"tcpstate_endpoints for the connections to one server port named in --metrics-ports.",
		[]string{"port", "state", "side"}, nil)
	descTracked = prometheus.NewDesc("tcpstate_connections_tracked",
		"Connections in the table now (open, or closed and not yet written out).", nil, nil)
	descPortTracked = prometheus.NewDesc("tcpstate_port_connections_tracked",
		"tcpstate_connections_tracked for one server port named in --metrics-ports.", []string{"port"}, nil)
	descStarted = prometheus.NewDesc("tcpstate_connections_total",
		"Connections seen since tcpstate started (each instance of a 4-tuple counts once).", nil, nil)
	descFinished = prometheus.NewDesc("tcpstate_connections_finished_total",
		"Connections finished (closed at both ends, replaced, evicted or timed out), written out and forgotten.", nil, nil)
	descPortFinished = prometheus.NewDesc("tcpstate_port_connections_finished_total",
		"tcpstate_connections_finished_total for one server port named in --metrics-ports.", []string{"port"}, nil)
	descEvicted = prometheus.NewDesc("tcpstate_connections_evicted_total",
		"Connections dropped from a full table (--max-flows) before they finished.", nil, nil)
	descTimedOut = prometheus.NewDesc("tcpstate_connections_timed_out_total",
		"Connections forgotten after an hour of silence while still open.", nil, nil)
	descDiag = prometheus.NewDesc("tcpstate_diagnoses_total",
		"Connections on which a diagnosis was raised, by identifier (syn-unanswered, refused, half-closed, reset, middlebox-reset, ...) and the endpoint it concerns.",
		[]string{"diagnosis", "side"}, nil)
	descPortDiag = prometheus.NewDesc("tcpstate_port_diagnoses_total",
		"tcpstate_diagnoses_total for the connections to one server port named in --metrics-ports.",
		[]string{"port", "diagnosis", "side"}, nil)
	descPackets = prometheus.NewDesc("tcpstate_packets_captured_total",
		"Packets captured (read from the capture), by capture worker.", []string{"worker"}, nil)
	descTCP = prometheus.NewDesc("tcpstate_packets_tcp_total",
		"TCP segments among the packets captured, by capture worker.", []string{"worker"}, nil)
	descKernelDrop = prometheus.NewDesc("tcpstate_packets_dropped_kernel_total",
		"Packets the kernel dropped because the capture buffer was full (tcpstate fell behind), by capture worker.", []string{"worker"}, nil)
	descIfaceDrop = prometheus.NewDesc("tcpstate_packets_dropped_interface_total",
		"Packets the interface or its driver dropped (where the system reports it), by capture worker.", []string{"worker"}, nil)
)

// New returns a collector with a per-port breakdown for ports (server ports; may be empty).
func New(ports []uint16) *Collector {
	c := &Collector{ports: slices.Sorted(slices.Values(ports)),
		portEndpoints: map[uint16]*[2][numStates]float64{}, portTracked: map[uint16]float64{},
		portFinished: map[uint16]uint64{}, diag: map[diagKey]uint64{}, portDiag: map[portDiagKey]uint64{},
		counted: map[uint64]uint64{}, ids: map[string]uint{}}
	c.ports = slices.Compact(c.ports)
	for _, p := range c.ports {
		c.portEndpoints[p] = &[2][numStates]float64{}
	}
	// Every known diagnosis is exported from the start, at zero, so that rate() and increase()
	// see its first occurrence.
	for _, id := range tracker.AllDiagnoses {
		for _, side := range []tracker.Side{tracker.ClientSide, tracker.ServerSide} {
			c.diag[diagKey{id, side}] = 0
			for _, p := range c.ports {
				c.portDiag[portDiagKey{p, diagKey{id, side}}] = 0
			}
		}
	}
	return c
}

// ParsePorts reads --metrics-ports: a comma-separated list of port numbers.
func ParsePorts(s string) ([]uint16, error) {
	var ports []uint16
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("--metrics-ports %q: %q is not a port number (1-65535); give a list such as 443,5432", s, f)
		}
		ports = append(ports, uint16(n))
	}
	if len(ports) > maxPorts {
		return nil, fmt.Errorf("--metrics-ports: %d ports given, at most %d: each adds a series per state and diagnosis", len(ports), maxPorts)
	}
	return ports, nil
}

// maxPorts bounds --metrics-ports (each port adds some 70 series).
const maxPorts = 64

// Refresh sets the figures of a refresh: the connections the run holds now (evaluated as of
// now), handed one at a time by each (which may reuse one Conn for all of them), the capture's
// statistics per worker and how many connections were seen in all.
func (c *Collector) Refresh(each func(count func(*tracker.Conn)), workers []capture.Stats, started uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endpoints = [2][numStates]float64{}
	for _, p := range c.portEndpoints {
		*p = [2][numStates]float64{}
	}
	clear(c.portTracked)
	n := 0
	each(func(conn *tracker.Conn) {
		n++
		c.countEndpoints(conn)
		c.countDiagnoses(conn)
	})
	c.tracked = float64(n)
	c.capture = append(c.capture[:0], workers...)
	c.started = max(c.started, started)
}

// Finished counts a connection written out and forgotten, and its diagnoses not yet counted.
func (c *Collector) Finished(conn *tracker.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.countDiagnoses(conn)
	delete(c.counted, conn.ID)
	c.finished++
	if p, ok := c.port(conn); ok {
		c.portFinished[p]++
	}
	if conn.Evicted {
		c.evicted++
	}
	if conn.TimedOut {
		c.timedOut++
	}
	c.started = max(c.started, conn.ID)
}

// port is the connection's server port, if it is one of --metrics-ports.
func (c *Collector) port(conn *tracker.Conn) (uint16, bool) {
	p := conn.Server.Addr.Port()
	_, ok := c.portEndpoints[p]
	return p, ok
}

func (c *Collector) countEndpoints(conn *tracker.Conn) {
	cs, ss := int(conn.Client.State), int(conn.Server.State)
	if cs >= numStates || ss >= numStates {
		return
	}
	c.endpoints[0][cs]++
	c.endpoints[1][ss]++
	if p, ok := c.port(conn); ok {
		pe := c.portEndpoints[p]
		pe[0][cs]++
		pe[1][ss]++
		c.portTracked[p]++
	}
}

func (c *Collector) countDiagnoses(conn *tracker.Conn) {
	done := c.counted[conn.ID]
	p, byPort := c.port(conn)
	for _, d := range conn.Diagnoses {
		bit, ok := c.ids[d.ID]
		if !ok {
			bit = uint(len(c.ids))
			if bit >= 64 {
				continue // more identifiers than any version of tcpstate has
			}
			c.ids[d.ID] = bit
		}
		if done&(1<<bit) != 0 {
			continue
		}
		done |= 1 << bit
		k := diagKey{d.ID, d.Side}
		c.diag[k]++
		if byPort {
			c.portDiag[portDiagKey{p, k}]++
		}
	}
	if done != 0 {
		c.counted[conn.ID] = done // (none kept for the connections without a diagnosis)
	}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEndpoints, descPortEndpoints, descTracked, descPortTracked,
		descStarted, descFinished, descPortFinished, descEvicted, descTimedOut, descDiag, descPortDiag,
		descPackets, descTCP, descKernelDrop, descIfaceDrop} {
		ch <- d
	}
}

var sideNames = [2]string{"client", "server"}

// Collect sends the figures of the latest refresh.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for side := range 2 {
		for s := range numStates {
			gauge(descEndpoints, c.endpoints[side][s], tracker.State(s).String(), sideNames[side])
		}
	}
	gauge(descTracked, c.tracked)
	counter(descStarted, c.started)
	counter(descFinished, c.finished)
	counter(descEvicted, c.evicted)
	counter(descTimedOut, c.timedOut)
	for k, n := range c.diag {
		counter(descDiag, n, k.id, k.side.String())
	}
	for _, p := range c.ports {
		port := strconv.Itoa(int(p))
		pe := c.portEndpoints[p]
		for side := range 2 {
			for s := range numStates {
				gauge(descPortEndpoints, pe[side][s], port, tracker.State(s).String(), sideNames[side])
			}
		}
		gauge(descPortTracked, c.portTracked[p], port)
		counter(descPortFinished, c.portFinished[p], port)
	}
	for k, n := range c.portDiag {
		counter(descPortDiag, n, strconv.Itoa(int(k.port)), k.id, k.side.String())
	}
	for w, st := range c.capture {
		worker := strconv.Itoa(w)
		counter(descPackets, st.Packets, worker)
		counter(descTCP, st.TCP, worker)
		counter(descKernelDrop, st.KernelDropped, worker)
		counter(descIfaceDrop, st.IfaceDropped, worker)
	}
}

// Server serves /metrics on an address.
type Server struct {
	Addr string // the address it listens on (with the port chosen when ADDR asked for :0)
	srv  *http.Server
	done chan error
}

// Serve listens on addr (host:port, or :port for every address) and serves the collector at
// /metrics, with the Go runtime's and the process's own metrics beside it.
func Serve(addr string, c *Collector) (*Server, error) {
	if !strings.Contains(addr, ":") {
		addr = ":" + addr // --metrics 9100 means port 9100, as node_exporter's habit
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: cannot listen: %v (is another exporter on that port? pick another, e.g. --metrics :9917)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "tcpstate: metrics are at /metrics")
	})
	s := &Server{Addr: ln.Addr().String(), srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Close stops serving.
func (s *Server) Close() error {
	err := s.srv.Close()
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
