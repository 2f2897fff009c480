//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/internal/kernellab"
)

// nsHTTP is an HTTP client whose connections are made inside a network namespace (its
// loopback is not the test's).
func nsHTTP(ns kernellab.Netns) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(func() error {
			var err error
			c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

// freePort asks the namespace's kernel for a free loopback port.
func freePort(t *testing.T, ns kernellab.Netns) int {
	t.Helper()
	var port int
	if err := ns.Do(func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		port = ln.Addr().(*net.TCPAddr).Port
		return ln.Close()
	}); err != nil {
		t.Fatal(err)
	}
	return port
}

// newTestLab sets the kernel lab up for a test, torn down when it ends.
func newTestLab(t *testing.T, timeout time.Duration) (*kernellab.Lab, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	lab, err := kernellab.NewLab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab teardown: %v", err)
		}
	})
	return lab, ctx
}

// promQuery asks Prometheus's HTTP API for an instant query: each series' labels and value.
type promSample struct {
	Labels map[string]string
	Value  float64
}

func promQuery(c *http.Client, base, q string) ([]promSample, error) {
	resp, err := c.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", q, r.Error)
	}
	var out []promSample
	for _, s := range r.Data.Result {
		v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		out = append(out, promSample{s.Metric, v})
	}
	return out, nil
}

// readmeBlock is the text between <!-- NAME:begin --> and <!-- NAME:end --> in the README,
// without its code fence.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- " + name + ":begin -->\\s*```[a-z]*\\n(.*?)```\\s*<!-- " + name + ":end -->").FindSubmatch(data)
	if m == nil {
		t.Fatalf("README.md has no %s block", name)
	}
	return string(m[1])
}

// TestMetricsPrometheus: a real Prometheus scrapes `tcpstate -i --metrics` on the lab's tap
// while kernel connections meet several fates (clean close, refused, half-closed, SYNs
// unanswered), and the values it stored, read through its query API, are the right ones; the
// exposition passes `promtool check metrics`; the README's alert rules load and evaluate.
// Prometheus runs in the router's namespace (on its loopback, a free port, a temporary
// storage directory) and is stopped by its PID. About 15 s.
func TestMetricsPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping Prometheus against live capture in network namespaces")
	}
	if err := kernellab.Preflight(); err != nil {
		t.Skipf("Prometheus test: %v", err)
	}
	promBin, err1 := exec.LookPath("prometheus")
	promtool, err2 := exec.LookPath("promtool")
	if err1 != nil || err2 != nil {
		t.Skip("Prometheus test: the prometheus and promtool commands are missing (Debian package prometheus; make test installs it as root)")
	}
	bin := toolBinary(t)
	lab, ctx := newTestLab(t, 90*time.Second)
	ns := lab.Router
	web := nsHTTP(ns)
	dir := t.TempDir()

	// tcpstate, with a port chosen by the kernel, snapshots every 2 s, port 80 broken down.
	ts := startLive(t, bin, ns, "tcpstate", nil, "-i", kernellab.RouterClientIface, "-o", "json",
		"--metrics", "127.0.0.1:0", "--metrics-ports", "80", "--snapshot-every", "2s", "tcp")
	addrRE := regexp.MustCompile(`serving metrics at http://([0-9.:]+)/metrics`)
	waitUntil(t, 10*time.Second, "tcpstate's metrics address", func() bool { return addrRE.MatchString(ts.stderr.String()) })
	target := addrRE.FindStringSubmatch(ts.stderr.String())[1]

	// Prometheus, scraping it every second, with the README's alert rules.
	rules := filepath.Join(dir, "tcpstate-rules.yml")
	if err := os.WriteFile(rules, []byte(readmeBlock(t, "alert-rules")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the README's alert rules: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: tcpstate
    static_configs: [{targets: [%q]}]
`, rules, target)), 0o644)
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, ns))
	prom := ns.Command(context.Background(), promBin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	var promLog syncBuffer
	prom.Stdout, prom.Stderr = &promLog, &promLog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	promDone := make(chan struct{})
	go func() { prom.Wait(); close(promDone) }()
	defer func() {
		prom.Process.Signal(syscall.SIGTERM) // by PID: the process this test started
		select {
		case <-promDone:
		case <-time.After(5 * time.Second):
			prom.Process.Kill()
			<-promDone
		}
	}()
	base := "http://" + promAddr
	query := func(q string) []promSample {
		t.Helper()
		s, err := promQuery(web, base, q)
		if err != nil {
			t.Fatalf("query %s: %v\nprometheus: %s", q, err, promLog.String())
		}
		return s
	}
	waitUntil(t, 20*time.Second, "Prometheus's first scrape of tcpstate", func() bool {
		s, err := promQuery(web, base, `up{job="tcpstate"}`)
		return err == nil && len(s) == 1 && s[0].Value == 1
	})

	// The connections: port 80 closes cleanly (client first), then one is half-closed (the
	// server never closes: CLOSE_WAIT); port 79 refuses; port 81's SYNs are dropped behind the tap.
	r := &kernellab.Run{Ctx: ctx, Lab: lab}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := r.Listen(false, 80)
	must(err)
	clean, err := r.Connect(false, 80, l, "clean-close")
	must(err)
	must(r.Exchange(clean, "GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\nhello\n"))
	must(r.CloseClientFirst(clean))
	half, err := r.Connect(false, 80, l, "half-close")
	must(err)
	must(r.HalfClose(half))
	_, err = r.Refused(false, 79, "refused")
	must(err)
	_, err = r.Listen(false, 81)
	must(err)
	must(r.DropSYNs(false, 81))
	// One SYN retransmission (TCP_SYNCNT 1): the next one, due 2 s after it, never comes, and a
	// SYN is syn-unanswered only once its retransmission was due and did not come (issue 16).
	synOnce := func(k *kernellab.Sock) error { return k.SetInt(syscall.IPPROTO_TCP, syscall.TCP_SYNCNT, 1) }
	_, err = r.Dial(false, 81, "syn-unanswered", synOnce)
	must(err)

	// Wait until a scrape has seen all four connections, then read what Prometheus stored.
	waitUntil(t, 20*time.Second, "Prometheus to store the four connections", func() bool {
		s, err := promQuery(web, base, `tcpstate_connections_total`)
		return err == nil && len(s) == 1 && s[0].Value == 4
	})
	// States move with each packet, diagnoses on the next tick (a quarter second behind the
	// wall clock; syn-unanswered about 3.4 s after the first SYN): wait for a scrape after the
	// diagnoses of all four, and for the CLOSE_WAIT
	// gauge (it needs the server's ACK of the FIN).
	var seen string // what Prometheus had last, for the failure message
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %s", seen)
		}
	}()
	waitUntil(t, 10*time.Second, "a scrape with the diagnoses and the connection in CLOSE_WAIT", func() bool {
		d, err1 := promQuery(web, base, `sum(tcpstate_diagnoses_total)`)
		s, err2 := promQuery(web, base, `tcpstate_port_endpoints{port="80",side="server",state="CLOSE_WAIT"}`)
		seen = fmt.Sprintf("diagnoses %v (%v), CLOSE_WAIT on port 80 %v (%v)", d, err1, s, err2)
		return err1 == nil && err2 == nil && len(d) == 1 && d[0].Value >= 3 && len(s) == 1 && s[0].Value == 1
	})
	one := func(q string, want float64) {
		t.Helper()
		s := query(q)
		var sum float64
		for _, x := range s {
			sum += x.Value
		}
		if len(s) == 0 || sum != want {
			t.Errorf("%s = %v (%d series), want %v", q, sum, len(s), want)
		}
	}
	one(`tcpstate_diagnoses_total{diagnosis="refused",side="server"}`, 1)
	one(`tcpstate_diagnoses_total{diagnosis="syn-unanswered",side="server"}`, 1)
	one(`tcpstate_diagnoses_total{diagnosis="half-closed"}`, 1)
	one(`sum(tcpstate_diagnoses_total)`, 3)
	one(`tcpstate_port_diagnoses_total{port="80",diagnosis="half-closed"}`, 1)
	one(`tcpstate_port_endpoints{port="80",side="client",state="TIME_WAIT"}`, 1)
	one(`tcpstate_port_endpoints{port="80",side="client",state="FIN_WAIT_2"}`, 1)
	one(`sum(tcpstate_port_endpoints{port="80"})`, 4) // two connections, two sides
	one(`tcpstate_endpoints{side="client",state="SYN_SENT"}`, 1)
	one(`tcpstate_endpoints{side="server",state="CLOSE_WAIT"}`, 1)
	one(`tcpstate_packets_dropped_kernel_total`, 0)
	if s := query(`tcpstate_port_endpoints{port!="80"}`); len(s) != 0 {
		t.Errorf("series for ports not named in --metrics-ports: %v", s)
	}
	if s := query(`sum(tcpstate_packets_tcp_total)`); len(s) != 1 || s[0].Value < 12 {
		t.Errorf("tcpstate_packets_tcp_total = %v, want the dozen segments or more of four connections", s)
	}
	// The README's alert rules were loaded and evaluate without error.
	resp, err := web.Get(base + "/api/v1/rules")
	must(err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rr struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				}
			}
		}
	}
	must(json.Unmarshal(body, &rr))
	nrules := 0
	for _, g := range rr.Data.Groups {
		for _, rule := range g.Rules {
			nrules++
			if rule.Health != "ok" {
				t.Errorf("alert rule %s: health %q %s", rule.Name, rule.Health, rule.LastError)
			}
		}
	}
	if nrules != 2 {
		t.Errorf("Prometheus loaded %d alert rules from the README, want 2:\n%s", nrules, body)
	}

	// promtool accepts the exposition as it is served.
	resp, err = web.Get("http://" + target + "/metrics")
	must(err)
	expo, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(expo)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// Snapshots: the half-closed connection was written out while open, marked as such.
	snapped := func() bool {
		for _, line := range strings.Split(ts.stdout.String(), "\n") {
			if strings.Contains(line, `"snapshot":true`) && strings.Contains(line, `"state":"CLOSE_WAIT"`) {
				return true
			}
		}
		return false
	}
	waitUntil(t, 6*time.Second, "a snapshot record of the CLOSE_WAIT connection (every 2 s)", snapped)
	ts.stop(t, syscall.SIGINT)
	var lines []string
	for _, l := range strings.Split(string(expo), "\n") {
		if strings.HasPrefix(l, "tcpstate_") && !strings.HasSuffix(l, " 0") {
			lines = append(lines, l)
		}
	}
	t.Logf("non-zero tcpstate series:\n%s\ntcpstate -o json:\n%s", strings.Join(lines, "\n"), ts.stdout.String())
}
