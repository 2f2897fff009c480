package osfp

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tcpstate/tcpstate/capture"
)

// layout builds an OptionLayout from option kinds (0 for EOL).
func layout(kinds ...uint8) capture.OptionLayout {
	var l capture.OptionLayout
	for i, k := range kinds {
		if k == 0 {
			k = 255
		}
		l |= capture.OptionLayout(k) << (8 * i)
	}
	return l
}

const (
	eol, nop, mss, ws, sok, ts = 0, 1, 2, 3, 4, 8
)

func TestClassify(t *testing.T) {
	syn := func(ttl uint8, win uint16, l capture.OptionLayout) Facts {
		return Facts{TTL: ttl, Window: win, MSS: 1460, Layout: l, What: factsSYN}
	}
	for _, c := range []struct {
		name string
		f    Facts
		want Family
	}{
		{"linux SYN", syn(64, 64240, layout(mss, sok, ts, nop, ws)), Linux},
		{"linux SYN one hop away", syn(63, 64240, layout(mss, sok, ts, nop, ws)), Linux},
		{"linux with a fast open cookie", syn(64, 64240, layout(mss, sok, ts, nop, ws, 34, nop, nop)), Linux},
		{"linux without timestamps", syn(64, 64240, layout(mss, nop, nop, sok, nop, ws)), Linux},
		{"windows 10", syn(128, 64240, layout(mss, nop, ws, nop, nop, sok)), Windows},
		{"windows layout but TTL 64 (a forgery, or a middlebox)", syn(64, 64240, layout(mss, nop, ws, nop, nop, sok)), Unknown},
		{"freebsd", syn(64, 65535, layout(mss, nop, ws, sok, ts)), BSD},
		{"macos", syn(64, 65535, layout(mss, nop, ws, nop, nop, ts, sok, eol)), MacOS},
		{"router, TTL 255", syn(255, 4128, layout(mss)), Unknown},
		{"TTL 128 alone", Facts{TTL: 120, What: factsTTL}, Windows},
		{"TTL 64 alone", Facts{TTL: 60, What: factsTTL}, Unknown},
		{"nothing", Facts{}, Unknown},
	} {
		got, why := Classify(c.f)
		if got != c.want {
			t.Errorf("%s: got %s (%s), want %s", c.name, got, why, c.want)
		}
	}
}

func TestFromSegment(t *testing.T) {
	seg := capture.Segment{TTL: 63, Flags: capture.SYN, Window: 29184,
		Opts: capture.Options{Has: capture.HasMSS | capture.HasWScale | capture.HasSACKPerm | capture.HasTimestamps,
			MSS: 1460, WScale: 7, Layout: layout(mss, sok, ts, nop, ws)}}
	f := FromSegment(&seg)
	if !f.FromHandshake() || !f.TS || !f.WS || f.WScale != 7 {
		t.Fatalf("facts %+v", f)
	}
	if got := f.Evidence(); got != "ttl 63, SYN win 29184, mss 1460, ws 7, options mss,sok,ts,nop,ws" {
		t.Errorf("evidence %q", got)
	}
	seg.Flags = capture.ACK
	if f := FromSegment(&seg); f.FromHandshake() || f.TTL != 63 {
		t.Errorf("ACK facts %+v", f)
	}
}

func TestPolicy(t *testing.T) {
	a := netip.MustParseAddr
	for _, c := range []struct {
		spec   string
		addr   string
		client bool
		want   Family
		forced bool
	}{
		{"auto", "192.0.2.1", true, Unknown, false},
		{"windows", "192.0.2.1", true, Windows, true},
		{"192.0.2.0/24=windows", "192.0.2.9", false, Windows, true},
		{"192.0.2.0/24=windows", "198.51.100.1", false, Unknown, false},
		{"192.0.2.0/24=windows,192.0.2.7=linux", "192.0.2.7", true, Linux, true},
		{"client=macos,server=bsd", "2001:db8::1", false, BSD, true},
		{"client=macos,192.0.2.0/24=linux", "192.0.2.1", true, Linux, true},
		{"linux,server=windows", "192.0.2.1", true, Linux, true},
	} {
		p, err := ParsePolicy(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		got, forced := p.Forced(a(c.addr), c.client)
		if got != c.want || forced != c.forced {
			t.Errorf("--os %s, %s client=%v: got %s forced=%v, want %s forced=%v", c.spec, c.addr, c.client, got, forced, c.want, c.forced)
		}
	}
	for _, bad := range []string{"solaris", "auto,linux", "10.0.0.0/8=plan9", "nowhere=linux"} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("--os %s: no error", bad)
		}
	}
}

// TestLayoutMatchesAsStrings: the numeric layout match Classify uses is the rule written on
// the layouts' strings (equal, or the signature followed by a TFO cookie, kind 34).
func TestLayoutMatchesAsStrings(t *testing.T) {
	var lays []capture.OptionLayout
	for _, c := range layoutCodes {
		lays = append(lays, c.code, c.code|34<<(8*c.n), c.code|34<<(8*c.n)|2<<(8*(c.n+1)), c.code>>8, c.code|1<<(8*c.n), c.code|35<<(8*c.n))
	}
	lays = append(lays, 0, 0x080101)
	n := 0
	for _, lay := range lays {
		for i, l := range layouts {
			str := lay.String()
			want := str == l.layout || strings.HasPrefix(str, l.layout+",?34")
			if got := layoutMatches(lay, layoutCodes[i]); got != want {
				t.Errorf("layout %q against signature %q: %v, want %v", str, l.layout, got, want)
			}
			if want {
				n++
			}
		}
	}
	if n < len(layouts) {
		t.Errorf("only %d matches among %d signatures: the test does not reach them", n, len(layouts))
	}
}
