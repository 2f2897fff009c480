package kernellab

import (
	"net/netip"
	"strings"
	"testing"
)

const ssSample = `State      Recv-Q Send-Q       Local Address:Port         Peer Address:PortProcess
LISTEN     0      128                0.0.0.0:80                0.0.0.0:*
LISTEN     0      128                   [::]:80                   [::]:*
LISTEN     0      4096                     *:8080                    *:*
ESTAB      0      0                192.0.2.2:46392        198.51.100.2:80
SYN-SENT   0      1                192.0.2.2:46554        198.51.100.2:8081
SYN-RECV   0      0             198.51.100.2:80              192.0.2.2:38116
FIN-WAIT-1 0      1                192.0.2.2:38130        198.51.100.2:80
FIN-WAIT-2 0      0          [2001:db8:1::2]:33896   [2001:db8:2::2]:8080
CLOSE-WAIT 2172   0             198.51.100.2:80              192.0.2.2:49926
CLOSING    0      1                192.0.2.2:1            198.51.100.2:2
LAST-ACK   0      1                192.0.2.2:3            198.51.100.2:4
TIME-WAIT  0      0          [2001:db8:2::2]:8080    [2001:db8:1::2]:33892   timer:(timewait,59sec,0)
ESTAB      0      0     [::ffff:192.0.2.9]:443       [::ffff:198.51.100.7]:5555
ESTAB      0      0          [fe80::1]%c0:22           [fe80::2]%c0:40000
UNCONN     0      0                  0.0.0.0:*                 0.0.0.0:*
`

func TestParseSS(t *testing.T) {
	rows, err := ParseSS(strings.NewReader(ssSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 15 {
		t.Fatalf("got %d rows, want 15", len(rows))
	}
	type want struct {
		state, canonical, local, peer string
		localAny, peerAnyPort         bool
	}
	wants := []want{
		{"LISTEN", "LISTEN", "", "", true, true},
		{"LISTEN", "LISTEN", "", "", true, true},
		{"LISTEN", "LISTEN", "", "", true, true},
		{"ESTAB", "ESTABLISHED", "192.0.2.2:46392", "198.51.100.2:80", false, false},
		{"SYN-SENT", "SYN_SENT", "192.0.2.2:46554", "198.51.100.2:8081", false, false},
		{"SYN-RECV", "SYN_RECEIVED", "198.51.100.2:80", "192.0.2.2:38116", false, false},
		{"FIN-WAIT-1", "FIN_WAIT_1", "192.0.2.2:38130", "198.51.100.2:80", false, false},
		{"FIN-WAIT-2", "FIN_WAIT_2", "[2001:db8:1::2]:33896", "[2001:db8:2::2]:8080", false, false},
		{"CLOSE-WAIT", "CLOSE_WAIT", "198.51.100.2:80", "192.0.2.2:49926", false, false},
		{"CLOSING", "CLOSING", "192.0.2.2:1", "198.51.100.2:2", false, false},
		{"LAST-ACK", "LAST_ACK", "192.0.2.2:3", "198.51.100.2:4", false, false},
		{"TIME-WAIT", "TIME_WAIT", "[2001:db8:2::2]:8080", "[2001:db8:1::2]:33892", false, false},
		{"ESTAB", "ESTABLISHED", "192.0.2.9:443", "198.51.100.7:5555", false, false},
		{"ESTAB", "ESTABLISHED", "[fe80::1]:22", "[fe80::2]:40000", false, false},
		{"UNCONN", "CLOSED", "", "", true, true},
	}
	for i, w := range wants {
		r := rows[i]
		if r.State != w.state || r.Canonical() != w.canonical {
			t.Errorf("row %d: state %s/%s, want %s/%s", i, r.State, r.Canonical(), w.state, w.canonical)
		}
		if r.Local.AnyAddr != w.localAny || r.Peer.AnyPort != w.peerAnyPort {
			t.Errorf("row %d: wildcards local-any=%v peer-any-port=%v", i, r.Local.AnyAddr, r.Peer.AnyPort)
		}
		if w.local != "" {
			if got := r.Local.AddrPort().String(); got != w.local {
				t.Errorf("row %d: local %s, want %s", i, got, w.local)
			}
			if got := r.Peer.AddrPort().String(); got != w.peer {
				t.Errorf("row %d: peer %s, want %s", i, got, w.peer)
			}
		}
	}
	if rows[2].Local.Port != 8080 || !rows[2].Local.AnyAddr {
		t.Errorf("*:8080 parsed as %+v", rows[2].Local)
	}
	if rows[9].RecvQ != 0 || rows[8].RecvQ != 2172 {
		t.Errorf("Recv-Q parsed wrong: %d %d", rows[9].RecvQ, rows[8].RecvQ)
	}
	if rows[11].Extra != "timer:(timewait,59sec,0)" {
		t.Errorf("extra column %q", rows[11].Extra)
	}
	if rows[13].Local.Zone != "c0" {
		t.Errorf("zone %q, want c0", rows[13].Local.Zone)
	}
}

func TestParseSSAddr(t *testing.T) {
	for _, c := range []struct {
		in      string
		addr    string
		port    uint16
		anyAddr bool
		anyPort bool
		zone    string
	}{
		{"192.0.2.1:80", "192.0.2.1", 80, false, false, ""},
		{"[2001:db8::1]:80", "2001:db8::1", 80, false, false, ""},
		{"*:*", "", 0, true, true, ""},
		{"0.0.0.0:*", "", 0, true, true, ""},
		{"[::]:*", "", 0, true, true, ""},
		{"*:443", "", 443, true, false, ""},
		{"[::]:22", "", 22, true, false, ""},
		{"127.0.0.53%lo:53", "127.0.0.53", 53, false, false, "lo"},
		{"[fe80::1%eth0]:22", "fe80::1", 22, false, false, "eth0"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1", 80, false, false, ""},
	} {
		a, err := ParseSSAddr(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if a.AnyAddr != c.anyAddr || a.AnyPort != c.anyPort || a.Port != c.port || a.Zone != c.zone {
			t.Errorf("%s: got %+v", c.in, a)
		}
		if c.addr != "" && a.Addr != netip.MustParseAddr(c.addr) {
			t.Errorf("%s: addr %s, want %s", c.in, a.Addr, c.addr)
		}
		if a.Concrete() != (!c.anyAddr && !c.anyPort) {
			t.Errorf("%s: Concrete()=%v", c.in, a.Concrete())
		}
	}
	for _, bad := range []string{"", "192.0.2.1", "192.0.2.1:x", "[2001:db8::1:80", "nonsense:80", "1.2.3.4:70000"} {
		if _, err := ParseSSAddr(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseSSErrors(t *testing.T) {
	for _, bad := range []string{
		"State Recv-Q Send-Q Local Address:Port Peer Address:Port\nWEIRD 0 0 1.2.3.4:1 5.6.7.8:2\n",
		"ESTAB 0 0 1.2.3.4:1\n",
		"ESTAB x 0 1.2.3.4:1 5.6.7.8:2\n",
	} {
		if _, err := ParseSS(strings.NewReader(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
	rows, err := ParseSS(strings.NewReader("State Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"))
	if err != nil || len(rows) != 0 {
		t.Errorf("header only: %v %v", rows, err)
	}
}

func TestCanonicalState(t *testing.T) {
	for ss, want := range map[string]string{
		"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECEIVED", "FIN-WAIT-1": "FIN_WAIT_1",
		"FIN-WAIT-2": "FIN_WAIT_2", "CLOSE-WAIT": "CLOSE_WAIT", "CLOSING": "CLOSING", "LAST-ACK": "LAST_ACK",
		"TIME-WAIT": "TIME_WAIT", "LISTEN": "LISTEN", "UNCONN": "CLOSED",
	} {
		if got, ok := CanonicalState(ss); !ok || got != want {
			t.Errorf("%s -> %s %v, want %s", ss, got, ok, want)
		}
	}
	if _, ok := CanonicalState("ESTABLISHED"); ok {
		t.Error("ESTABLISHED is not an ss name")
	}
}
