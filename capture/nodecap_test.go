package capture

import (
	"os"
	"testing"
)

func TestNoDecapLeavesTunnelsAlone(t *testing.T) {
	path := "../../shared/pcaps/zeek/tunnels_Teredo.pcap"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("needs the shared corpus (%v)", err)
	}
	count := func(noDecap bool) (inner, tunneled int) {
		src, err := OpenFiles([]string{path}, Config{NoDecap: noDecap})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		var s Segment
		for src.Next(&s) {
			inner++
			if s.Tunnel != TunnelNone {
				tunneled++
			}
		}
		return
	}
	all, tun := count(false)
	plain, tun2 := count(true)
	if tun == 0 || tun2 != 0 || plain != all-tun {
		t.Fatalf("decap: %d segments (%d tunneled); --no-decap: %d (%d tunneled), want %d untunneled only", all, tun, plain, tun2, all-tun)
	}
}
