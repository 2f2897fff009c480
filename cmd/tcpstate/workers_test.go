//go:build linux

package main

import (
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/internal/kernellab"
)

// TestLiveWorkers: on the lab's tap, `--workers 2` (two AF_PACKET sockets in a fanout group,
// a tracker each) and `--libpcap` (one reader) report the same connections, connection for
// connection; the flows were spread over both sockets (per-socket metrics), and the closing
// line gives the kernel's drops per socket; --problems chooses the same connections on either
// path. About 5 s.
func TestLiveWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping live capture in network namespaces")
	}
	if err := kernellab.Preflight(); err != nil {
		t.Skipf("AF_PACKET workers in network namespaces: %v", err)
	}
	bin := toolBinary(t)
	lab, ctx := newTestLab(t, time.Minute)
	tap := kernellab.RouterClientIface
	pc := startLive(t, bin, lab.Router, "libpcap", nil, "-i", tap, "--libpcap", "-o", "json", "tcp")
	af := startLive(t, bin, lab.Router, "workers", nil, "-i", tap, "--workers", "2", "-o", "json", "--metrics", "127.0.0.1:0", "tcp")
	// --problems holds on the AF_PACKET path too.
	pr := startLive(t, bin, lab.Router, "problems", nil, "-i", tap, "--workers", "2", "--problems", "-o", "json", "tcp")
	for _, p := range []*liveProc{pc, af, pr} {
		waitUntil(t, 10*time.Second, p.name+" listening", func() bool { return strings.Contains(p.stderr.String(), "listening on") })
	}
	if !strings.Contains(af.stderr.String(), "AF_PACKET, 2 socket(s)") || !strings.Contains(pc.stderr.String(), "(libpcap)") {
		t.Errorf("the capture paths are not the ones asked for:\n%s\n%s", af.stderr.String(), pc.stderr.String())
	}

	r := &kernellab.Run{Ctx: ctx, Lab: lab}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	l4, err := r.Listen(false, 80)
	must(err)
	l6, err := r.Listen(true, 80)
	must(err)
	for i := range 8 {
		l := l4
		if i%3 == 2 {
			l = l6
		}
		c, err := r.Connect(i%3 == 2, 80, l, "conn")
		must(err)
		must(r.Exchange(c, "GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\nhello\n"))
		switch i % 4 {
		case 0:
			must(r.CloseClientFirst(c))
		case 1:
			must(r.CloseServerFirst(c))
		case 2:
			must(r.HalfClose(c))
		}
	}
	for range 2 {
		_, err = r.Refused(false, 79, "refused")
		must(err)
	}

	// Both sockets got flows.
	addr := regexp.MustCompile(`serving metrics at http://([0-9.:]+)/metrics`).FindStringSubmatch(af.stderr.String())
	if addr == nil {
		t.Fatalf("no metrics address:\n%s", af.stderr.String())
	}
	var expo []byte
	waitUntil(t, 10*time.Second, "the metrics to count the 10 connections", func() bool {
		resp, err := nsHTTP(lab.Router).Get("http://" + addr[1] + "/metrics")
		if err != nil {
			return false
		}
		expo, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(expo), "\ntcpstate_connections_total 10\n")
	})
	perWorker := regexp.MustCompile(`(?m)^tcpstate_packets_tcp_total\{worker="(\d)"\} (\d+)$`).FindAllStringSubmatch(string(expo), -1)
	if len(perWorker) != 2 {
		t.Errorf("want TCP packet counts for 2 workers:\n%s", expo)
	}
	for _, w := range perWorker {
		if n, _ := strconv.Atoi(w[2]); n == 0 {
			t.Errorf("AF_PACKET socket %s got no packet of 10 flows: the fanout did not spread them", w[1])
		}
	}

	pc.stop(t, syscall.SIGINT)
	af.stop(t, syscall.SIGINT)
	pr.stop(t, syscall.SIGINT)
	keysOf := func(text string, problemsOnly bool) []string {
		var ks []string
		for _, c := range parseJSONLines(t, text) {
			if !problemsOnly || len(c.Diagnoses) > 0 {
				ks = append(ks, c.key())
			}
		}
		slices.Sort(ks)
		return ks
	}
	keys := func(text string) []string { return keysOf(text, false) }
	// The refusals and the half-closed connections: some of the 10, not all.
	wantProblems := keysOf(pc.stdout.String(), true)
	if got := keys(pr.stdout.String()); len(wantProblems) == 0 || len(wantProblems) == 10 || !slices.Equal(got, wantProblems) {
		t.Errorf("--workers 2 --problems wrote %d connections, want the %d with a problem:\n%s\nwant:\n%s",
			len(got), len(wantProblems), strings.Join(got, "\n"), strings.Join(wantProblems, "\n"))
	}
	want, got := keys(pc.stdout.String()), keys(af.stdout.String())
	if len(want) != 10 {
		t.Errorf("libpcap reported %d connections, want 10:\n%s", len(want), pc.stdout.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("--workers 2 and --libpcap disagree:\nworkers:\n%s\nlibpcap:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !regexp.MustCompile(`dropped by kernel \(per AF_PACKET socket: \d+ \d+\)`).MatchString(af.stderr.String()) {
		t.Errorf("the closing line lacks the drops per socket:\n%s", af.stderr.String())
	}
	t.Logf("%s", af.stderr.String())
}
