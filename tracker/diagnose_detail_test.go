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
