package report

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/tracker"
)

// expectFuzzConns is a small set of connections for FuzzParseExpectations to check
// expectations against: a whole connection, a refused one, a reset one over IPv6, a midstream
// one from an IPv4-mapped address, and a reuse of the first one's 4-tuple.
func expectFuzzConns(tb testing.TB) []*tracker.Conn {
	tb.Helper()
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ap := netip.MustParseAddrPort
	type p struct {
		src, dst string
		flags    capture.Flags
		seq, ack uint32
		n        uint32
	}
	const S, A, F, R = capture.SYN, capture.ACK, capture.FIN, capture.RST
	c1, s1 := "192.0.2.1:40000", "198.51.100.1:80"
	c2, s2 := "192.0.2.2:40001", "198.51.100.1:81"
	c3, s3 := "[2001:db8::1]:5555", "[2001:db8::2]:443"
	c4, s4 := "[::ffff:192.0.2.9]:6000", "203.0.113.5:5432"
	pkts := []p{
		{c1, s1, S, 100, 0, 0}, {s1, c1, S | A, 500, 101, 0}, {c1, s1, A, 101, 501, 0},
		{c1, s1, A, 101, 501, 10}, {c1, s1, F | A, 111, 501, 0}, {s1, c1, F | A, 501, 112, 0}, {c1, s1, A, 112, 502, 0},
		{c2, s2, S, 7, 0, 0}, {s2, c2, R | A, 0, 8, 0},
		{c3, s3, S, 1, 0, 0}, {s3, c3, S | A, 9, 2, 0}, {c3, s3, A, 2, 10, 0}, {s3, c3, R, 10, 0, 0},
		{c4, s4, A, 1000, 2000, 100}, {s4, c4, A, 2000, 1100, 0},
		{c1, s1, S, 90000, 0, 0},
	}
	tr := flowtable.New(flowtable.Config{})
	for i, x := range pkts {
		s := capture.Segment{Time: t0.Add(time.Duration(i) * 10 * time.Millisecond), Src: ap(x.src), Dst: ap(x.dst),
			Flags: x.flags, Seq: capture.Seq(x.seq), Ack: capture.Seq(x.ack), PayloadLen: x.n, Window: 1000, Packet: uint64(i + 1)}
		tr.Add(&s)
	}
	tr.Finish(time.Time{})
	return tr.Conns()
}

// FuzzParseExpectations feeds arbitrary bytes to the --expect parser: it must not panic, must
// fail with a message naming the file, and what it accepts must check against connections
// without panicking, the same way twice.
func FuzzParseExpectations(f *testing.F) {
	conns := expectFuzzConns(f)
	// What --expect-init writes parses back and passes on the capture it describes.
	var init bytes.Buffer
	if err := WriteExpectations(&init, "fuzz.pcap", conns); err != nil {
		f.Fatal(err)
	}
	exps, err := ParseExpectations("init.yaml", init.Bytes())
	if err != nil {
		f.Fatalf("--expect-init output does not parse: %v\n%s", err, init.String())
	}
	var rep strings.Builder
	if n := CheckExpectations(&rep, "init.yaml", exps, conns); n != 0 {
		f.Fatalf("--expect-init output fails on its own capture:\n%s", rep.String())
	}
	f.Add(init.Bytes())
	f.Add([]byte("- server: 198.51.100.1:80\n  not_diagnoses: any\n"))
	f.Add([]byte("- name: v6\n  client: \"[2001:db8::/64]:5555\"\n  server: \"[2001:db8::2]:443\"\n  client_state: [CLOSED, TIME-WAIT]\n  diagnoses: reset\n  count: \">=1\"\n"))
	f.Add([]byte("- server: 198.51.100.0/24:81\n  instance: 2\n  count: 0\n- port: 5432\n  client: 192.0.2.9\n  server_state: ESTAB, syn_rcvd\n"))
	f.Add([]byte(`[{"server": ":80", "not_diagnoses": ["port-reused", "any"], "count": "< 10"}]`))
	f.Add([]byte("- &a {server: '*', client: all}\n- *a\n- port: -1\n"))
	f.Add([]byte("- client_state: [[x]]\n"))
	f.Add([]byte("- bogus: 1\n"))
	f.Add([]byte("-\n- server: 192.0.2.1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		exps, err := ParseExpectations("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(exps) == 0 {
			t.Fatal("parsed, but no expectations")
		}
		for i, e := range exps {
			if e == nil {
				t.Fatalf("expectation %d is nil", i+1)
			}
			_ = e.describe()
		}
		var a, b strings.Builder
		n := CheckExpectations(&a, "fuzz.yaml", exps, conns)
		if n < 0 || n > len(exps) {
			t.Fatalf("%d of %d expectations failed", n, len(exps))
		}
		if m := CheckExpectations(&b, "fuzz.yaml", exps, conns); m != n || a.String() != b.String() {
			t.Fatalf("checking twice differs: %d then %d failures", n, m)
		}
		if (n == 0) != (a.Len() == 0) {
			t.Fatalf("%d failures but a %d-byte report", n, a.Len())
		}
		if CheckExpectations(&b, "fuzz.yaml", exps, nil) < 0 {
			t.Fatal("negative failures")
		}
	})
}

// TestExpectPortZero: port 0 in a selector is port 0, not "any port" (--expect-init writes it
// for a server seen on port 0, which hostile traffic has).
func TestExpectPortZero(t *testing.T) {
	conns := expectFuzzConns(t)
	for _, sel := range []string{`"198.51.100.1:0"`, `":0"`, `"198.51.100.0/24:0"`} {
		exps, err := ParseExpectations("zero.yaml", []byte("- server: "+sel+"\n  count: 0\n"))
		if err != nil {
			t.Fatal(err)
		}
		var rep strings.Builder
		if CheckExpectations(&rep, "zero.yaml", exps, conns) != 0 {
			t.Errorf("server %s selected connections on other ports:\n%s", sel, rep.String())
		}
	}
}
