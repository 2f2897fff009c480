package report

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/tracker"
)

// liveConns tracks a kernel recording as the live loop would, as of a second after its end.
func liveConns(t *testing.T) ([]*tracker.Conn, *Options) {
	t.Helper()
	src, err := capture.OpenFiles([]string{"../testdata/pcaps/kernel/mixed-40/capture.pcap"}, capture.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tr := flowtable.New(flowtable.Config{})
	var seg capture.Segment
	for src.Next(&seg) {
		tr.Add(&seg)
	}
	now := tr.Now.Add(5 * time.Second) // the stuck SYNs' next retransmission is overdue by then
	tr.Tick(now)
	return tr.Conns(), &Options{Names: tracker.NamesLinux, Now: now}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// TestLiveFrameFits: whatever the terminal's size, a frame is one screenful: no line longer than
// the width (which would wrap and scroll), no more lines than the height, problems first.
func TestLiveFrameFits(t *testing.T) {
	conns, o := liveConns(t)
	st := &LiveStatus{Interface: "eth0", Filter: "port 443", Started: o.Now.Add(-90 * time.Second), Now: o.Now,
		Packets: 341, Finished: 2, FinishedDiagnoses: map[string]int{"refused": 2}}
	for _, size := range [][2]int{{200, 60}, {120, 30}, {80, 24}, {60, 12}, {40, 8}, {20, 3}} {
		for _, color := range []bool{false, true} {
			v := &LiveView{Width: size[0], Height: size[1], Color: color}
			var b strings.Builder
			if err := v.Frame(&b, conns, st, o); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if !strings.HasPrefix(out, "\x1b[H") || !strings.HasSuffix(out, "\x1b[J") {
				t.Errorf("%dx%d: a frame goes home first and clears what is below it last", size[0], size[1])
			}
			lines := strings.Split(ansi.ReplaceAllString(out, ""), "\r\n")
			w, h := max(size[0], 40), max(size[1], 8) // the view's minimum
			if len(lines) > h {
				t.Errorf("%dx%d: %d lines", size[0], size[1], len(lines))
			}
			for _, l := range lines {
				if len(l) > w {
					t.Errorf("%dx%d: line of %d columns: %q", size[0], size[1], len(l), l)
				}
			}
			if size[1] >= 24 {
				text := strings.Join(lines, "\n")
				i := strings.Index(text, "ID  CLIENT")
				if i < 0 || !strings.Contains(text[i:], "\n1 ") || !strings.Contains(text, "SYN-SENT") {
					t.Errorf("%dx%d: want the stuck SYN #1 as the first row, in ss names:\n%s", size[0], size[1], text)
				}
			}
		}
	}
}

func TestLiveAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "-", 250 * time.Millisecond: "250ms", 59 * time.Second: "59s", 61 * time.Second: "1m01s",
		3*time.Hour + 5*time.Minute: "3h05m", 50 * time.Hour: "2d02h",
	} {
		if got := LiveAge(d); got != want {
			t.Errorf("LiveAge(%v) = %q, want %q", d, got, want)
		}
	}
}
