package capture

import (
	"fmt"
	"testing"
)

func TestScratchNonTCP(t *testing.T) {
	src, _ := OpenFiles([]string{"../../shared/pcaps/public/gopacket_linux_sll_oversized_addr.pcapng"}, Config{})
	var seg Segment
	last := uint64(0)
	for src.Next(&seg) {
		if seg.Packet != last+1 {
			fmt.Println("missing", last+1)
		}
		if seg.Truncated {
			fmt.Printf("trunc %+v\n", seg)
		}
		last = seg.Packet
	}
}
