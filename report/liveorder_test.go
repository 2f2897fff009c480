package report

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/tracker"
)

// At 80 columns, the DIAGNOSES column stays whole: the address columns give way first (issue 16).
// Lasting problems (an endpoint still holding a socket) come before transient ones (reset,
// refused), which come before connections without a problem.
func TestLiveView80Columns(t *testing.T) {
	conns, o := liveConns(t)
	st := &LiveStatus{Interface: "eth0", Started: o.Now.Add(-time.Minute), Now: o.Now, Packets: 341}
	v := &LiveView{Width: 80, Height: 60}
	var b strings.Builder
	if err := v.Frame(&b, conns, st, o); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(ansi.ReplaceAllString(b.String(), ""), "\r\n")
	byID := map[string]*tracker.Conn{}
	for _, c := range conns {
		byID[itoa(c.ID)] = c
	}
	var ranks []int
	rows, v6 := 0, 0
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		c, ok := byID[f[0]]
		if !ok {
			continue
		}
		rows++
		if len(l) > 80 {
			t.Errorf("line of %d columns: %q", len(l), l)
		}
		if want := diagList(c); !strings.HasSuffix(l, want) {
			t.Errorf("#%d: DIAGNOSES cut: %q, want it to end with %q", c.ID, l, want)
		}
		if c.Client.Addr.Addr().Is6() {
			v6++
			if !strings.Contains(l, ".."+":"+itoa(uint64(c.Client.Addr.Port()))) && !strings.Contains(l, AddrPort(c.Client.Addr)) {
				t.Errorf("#%d: the client's port is lost: %q", c.ID, l)
			}
		}
		ranks = append(ranks, liveRank(c))
	}
	if rows < 30 || v6 == 0 {
		t.Fatalf("%d connection rows (%d IPv6) in the frame, want the recording's (with IPv6):\n%s", rows, v6, strings.Join(lines, "\n"))
	}
	seen := map[int]bool{}
	for i, r := range ranks {
		seen[r] = true
		if i > 0 && r < ranks[i-1] {
			t.Errorf("row %d: rank %d after rank %d (0 lasting, 1 transient, 2 no problem):\n%s", i, r, ranks[i-1], strings.Join(lines, "\n"))
			break
		}
	}
	if !seen[0] || !seen[1] || !seen[2] {
		t.Errorf("the recording should show lasting, transient and no problems: %v", seen)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestShortenAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"192.0.2.2:44728", 20, "192.0.2.2:44728"},
		{"[2001:db8:1::2]:59696", 16, "[2001:db..:59696"},
		{"[2001:db8:1::2]:59696", 12, "[200..:59696"},
	} {
		if got := shortenAddr(tc.in, tc.n); got != tc.want || len(got) > tc.n {
			t.Errorf("shortenAddr(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
