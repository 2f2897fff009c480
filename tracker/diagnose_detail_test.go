package tracker

import (
	"fmt"
	"net/netip"
	"testing"
)

// The details built without fmt read exactly as the format strings they replace.
func TestDetailsAsFmt(t *testing.T) {
	for _, a := range []string{"192.0.2.1:80", "[2001:db8::1]:443", "[fe80::1%eth0]:65535", "0.0.0.0:0"} {
		ap := netip.MustParseAddrPort(a)
		for _, n := range []int{1, 7, 1 << 40} {
			if got, want := synUnansweredDetail(n, ap), fmt.Sprintf("%d SYN(s) to %s never answered (filtered, or host down)", n, ap); got != want {
				t.Errorf("synUnansweredDetail = %q, want %q", got, want)
			}
		}
		if got, want := refusedDetail(ap), fmt.Sprintf("%s answered the SYN with RST: nothing listens on port %d", ap.Addr(), ap.Port()); got != want {
			t.Errorf("refusedDetail = %q, want %q", got, want)
		}
	}
}

// The cache gives the detail the arguments call for, whatever it was asked before.
func TestDetailCache(t *testing.T) {
	var dc detailCache
	a, b := netip.MustParseAddrPort("192.0.2.1:80"), netip.MustParseAddrPort("[2001:db8::1]:80")
	for i, q := range []struct {
		n  int
		to netip.AddrPort
	}{{1, a}, {1, a}, {2, a}, {2, b}, {1, b}, {1, a}} {
		if got, want := dc.synUnanswered(q.n, q.to), synUnansweredDetail(q.n, q.to); got != want {
			t.Errorf("%d: synUnanswered(%d, %v) = %q, want %q", i, q.n, q.to, got, want)
		}
		if got, want := dc.refused(q.to), refusedDetail(q.to); got != want {
			t.Errorf("%d: refused(%v) = %q, want %q", i, q.to, got, want)
		}
	}
	var none *detailCache
	if got := none.synUnanswered(3, a); got != synUnansweredDetail(3, a) {
		t.Errorf("nil cache: %q", got)
	}
}
