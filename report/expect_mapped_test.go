package report

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/tcpstate/tcpstate/tracker"
)

func TestExpectInitRoundTripIPv4Mapped(t *testing.T) {
	c := &tracker.Conn{ID: 1}
	c.Client.Addr = netip.MustParseAddrPort("[::ffff:192.0.2.1]:40000")
	c.Server.Addr = netip.MustParseAddrPort("[::ffff:198.51.100.1]:80")
	var b bytes.Buffer
	if err := WriteExpectations(&b, "test", []*tracker.Conn{c}); err != nil {
		t.Fatal(err)
	}
	exps, err := ParseExpectations("init.yaml", b.Bytes())
	if err != nil {
		t.Fatalf("--expect-init output does not parse back: %v\n%s", err, b.String())
	}
	var rep bytes.Buffer
	if n := CheckExpectations(&rep, "init.yaml", exps, []*tracker.Conn{c}); n != 0 {
		t.Fatalf("its own capture fails its expectations:\n%s", rep.String())
	}
}
