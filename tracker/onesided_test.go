package tracker

import (
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

func trackFile(t *testing.T, path, filter string) []*Conn {
	t.Helper()
	src, err := capture.OpenFiles([]string{path}, capture.Config{Filter: filter})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tr := newTestTable(Config{Profile: profiles["linux"]})
	var seg capture.Segment
	for src.Next(&seg) {
		tr.Add(&seg)
	}
	tr.Finish(time.Time{})
	return tr.Conns()
}

// A capture of one direction (issue 16) gives no diagnosis that needs the other direction, and
// marks both states inferred; a capture of both directions is not taken for one-sided, nor is
// a SYN nobody answered (the SYN's sender never acknowledged anything).
func TestOneSidedCapture(t *testing.T) {
	const mixed = "../testdata/pcaps/kernel/mixed-40/capture.pcap"
	for _, tc := range []struct {
		filter  string
		missing Side
	}{{"dst port 80", ServerSide}, {"src port 80", ClientSide}} {
		conns := trackFile(t, mixed, tc.filter)
		if len(conns) < 20 {
			t.Fatalf("%s: %d connections", tc.filter, len(conns))
		}
		for _, c := range conns {
			m, ok := c.OneSided()
			if !ok || m != tc.missing {
				t.Errorf("%s: #%d not one-sided (missing %v, %v), packets %v", tc.filter, c.ID, m, ok, c.DirPackets)
				continue
			}
			if !c.Client.Inferred || !c.Server.Inferred {
				t.Errorf("%s: #%d states not marked inferred", tc.filter, c.ID)
			}
			gap := false
			for _, d := range c.Diagnoses {
				switch {
				case d.ID == DiagCaptureGap && d.Side == tc.missing:
					gap = true
				case (d.ID == DiagReset || d.ID == DiagZeroWindow) && d.Side == 1-tc.missing:
				case d.ID == DiagPortReused || d.ID == DiagIdle || d.ID == DiagMidstream:
				default:
					t.Errorf("%s: #%d: %s (%s) needs the direction the capture does not show: %+v", tc.filter, c.ID, d.ID, d.Side, d.Detail)
				}
			}
			if !gap {
				t.Errorf("%s: #%d does not say the capture is one-sided: %v", tc.filter, c.ID, c.Diagnoses)
			}
		}
	}
	for _, c := range trackFile(t, mixed, "") {
		if _, ok := c.OneSided(); ok {
			t.Errorf("both directions: #%d taken for one-sided", c.ID)
		}
	}
	for _, c := range trackFile(t, "../testdata/pcaps/kernel/syn-dropped/capture.pcap", "") {
		if _, ok := c.OneSided(); ok {
			t.Errorf("unanswered SYN: #%d taken for one-sided (%v)", c.ID, c.Diagnoses)
		}
	}
}
