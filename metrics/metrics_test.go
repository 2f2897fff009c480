package metrics

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/tracker"
)

// update refreshes c with open, as a run's tick does.
func update(c *Collector, open []*tracker.Conn, workers []capture.Stats, started uint64) {
	c.Refresh(func(count func(*tracker.Conn)) {
		for _, conn := range open {
			count(conn)
		}
	}, workers, started)
}

// track reads a kernel recording into a tracker evaluated at its end.
func track(t *testing.T, path string) []*tracker.Conn {
	t.Helper()
	src, err := capture.OpenFiles([]string{path}, capture.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p, _ := tracker.LookupProfile("linux")
	tr := flowtable.New(flowtable.Config{Profile: p})
	var seg capture.Segment
	for src.Next(&seg) {
		tr.Add(&seg)
	}
	tr.Finish(tr.Now)
	return tr.Conns()
}

// TestCollector: the figures are those of the connections given, each diagnosis is counted
// once per connection however many refreshes see it, the per-port breakdown covers only the
// ports asked for, and the exposition passes promlint.
func TestCollector(t *testing.T) {
	conns := track(t, "../testdata/pcaps/kernel/mixed-40/capture.pcap")
	// Half of them still open, the rest finished (written out and forgotten).
	open, done := conns[:len(conns)/2], conns[len(conns)/2:]
	var port uint16 = conns[0].Server.Addr.Port()
	c := New([]uint16{port})
	for range 3 {
		update(c, conns, []capture.Stats{{Packets: 100, TCP: 90, KernelDropped: 2}}, uint64(len(conns)))
	}
	update(c, open, []capture.Stats{{Packets: 200, TCP: 180, KernelDropped: 3, IfaceDropped: 1}}, uint64(len(conns)))
	for _, x := range done {
		c.Finished(x)
	}

	wantEP := map[string]float64{}
	wantPortEP := map[string]float64{}
	wantDiag := map[string]float64{}
	wantPortDiag := map[string]float64{}
	for _, x := range open {
		wantEP["client "+x.Client.State.String()]++
		wantEP["server "+x.Server.State.String()]++
		if x.Server.Addr.Port() == port {
			wantPortEP["client "+x.Client.State.String()]++
			wantPortEP["server "+x.Server.State.String()]++
		}
	}
	for _, x := range conns {
		for _, d := range x.Diagnoses {
			wantDiag[d.ID+" "+d.Side.String()]++
			if x.Server.Addr.Port() == port {
				wantPortDiag[d.ID+" "+d.Side.String()]++
			}
		}
	}
	if len(wantDiag) < 3 {
		t.Fatalf("the recording gives too few diagnoses to test with: %v", wantDiag)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]float64{}
	for _, mf := range mfs {
		m := map[string]float64{}
		for _, mm := range mf.GetMetric() {
			var key []string
			for _, l := range mm.GetLabel() {
				if l.GetName() != "port" {
					key = append(key, l.GetValue())
				} else if l.GetValue() != "" && l.GetValue() != itoa(port) {
					t.Errorf("%s: a series for port %s, which was not asked for", mf.GetName(), l.GetValue())
				}
			}
			v := mm.GetGauge().GetValue() + mm.GetCounter().GetValue()
			// (labels come sorted by name: diagnosis before side, side before state)
			m[strings.Join(key, " ")] = v
		}
		got[mf.GetName()] = m
	}
	check := func(name string, want map[string]float64, swap bool) {
		t.Helper()
		for k, v := range want {
			key := k
			if swap { // endpoints: labels side, state (sorted)
				f := strings.Fields(k)
				key = f[0] + " " + f[1]
			}
			if got[name][key] != v {
				t.Errorf("%s{%s} = %v, want %v", name, key, got[name][key], v)
			}
		}
		var sum, wsum float64
		for _, v := range got[name] {
			sum += v
		}
		for _, v := range want {
			wsum += v
		}
		if sum != wsum {
			t.Errorf("%s: the series add up to %v, want %v: %v", name, sum, wsum, got[name])
		}
	}
	check("tcpstate_endpoints", wantEP, true)
	check("tcpstate_port_endpoints", wantPortEP, true)
	check("tcpstate_diagnoses_total", wantDiag, false)
	check("tcpstate_port_diagnoses_total", wantPortDiag, false)
	for name, want := range map[string]float64{
		"tcpstate_connections_tracked":             float64(len(open)),
		"tcpstate_connections_finished_total":      float64(len(done)),
		"tcpstate_connections_total":               float64(len(conns)),
		"tcpstate_packets_captured_total":          200,
		"tcpstate_packets_dropped_kernel_total":    3,
		"tcpstate_packets_dropped_interface_total": 1,
	} {
		var sum float64
		for _, v := range got[name] {
			sum += v
		}
		if sum != want {
			t.Errorf("%s = %v, want %v", name, sum, want)
		}
	}
	if n := testutil.CollectAndCount(c, "tcpstate_diagnoses_total"); n < 2*len(tracker.AllDiagnoses) {
		t.Errorf("%d diagnosis series: every known identifier should be there from the start, at zero", n)
	}

	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestServe: /metrics answers over HTTP with the collector's figures and the Go runtime's.
func TestServe(t *testing.T) {
	c := New(nil)
	update(c, nil, []capture.Stats{{Packets: 7}}, 0)
	s, err := Serve("127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get("http://" + s.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`tcpstate_packets_captured_total{worker="0"} 7`, "go_goroutines", `tcpstate_endpoints{side="client",state="ESTABLISHED"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if _, err := Serve(s.Addr, c); err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Errorf("a second server on %s: %v", s.Addr, err)
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }
