package report

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/tracker"
)

// TestJSONLineMatchesEncoder holds the hand-written JSON lines (JSONLine, what -o json writes)
// to what encoding/json writes for ConnJSON, byte for byte: on every connection of the
// committed captures, and on connections with the fields those never set (escapes in every
// string, a zoned IPv6 address, a tunnel, dropped Zeek rows, eviction and time-out).
func TestJSONLineMatchesEncoder(t *testing.T) {
	var files []string
	filepath.WalkDir("../testdata/pcaps", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".pcap") || strings.HasSuffix(p, ".pcapng")) {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 10 {
		t.Fatalf("only %d captures under ../testdata/pcaps", len(files))
	}
	prof, _ := tracker.LookupProfile("linux")
	n := 0
	check := func(name string, c *tracker.Conn, o *Options) {
		t.Helper()
		n++
		want, err := json.Marshal(ConnJSON(c, o))
		if err != nil {
			t.Fatal(err)
		}
		got := NewJSONLine(o).Append(nil, c)
		if string(got) != string(want)+"\n" {
			t.Errorf("%s: connection %d:\n JSONLine: %s encoding/json: %s", name, c.ID, got, want)
		}
	}
	var sample []*tracker.Conn
	for _, f := range files {
		src, err := capture.OpenFiles([]string{f}, capture.Config{})
		if err != nil {
			t.Fatal(err)
		}
		tr := flowtable.New(flowtable.Config{Profile: prof})
		var seg capture.Segment
		for src.Next(&seg) {
			tr.Add(&seg)
		}
		src.Close()
		now := tr.Now
		tr.Finish(now)
		o := &Options{Profile: prof, Now: now}
		for _, c := range tr.Conns() {
			check(f, c, o)
		}
		if cs := tr.Conns(); len(cs) > 0 && len(sample) < 20 {
			sample = append(sample, cs[0])
		}
	}
	// What the captures never set.
	odd := "quote \" backslash \\ tag <b> & ctl \x01\x1f é \u2028 \xff end"
	o := &Options{Profile: prof, Now: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	for i, c := range sample {
		// Sentences with non-ASCII characters, and (i%4 == 1, below) naming a zoned address
		// with quotes and tags in its zone.
		c.Client.Evidence, c.Server.Evidence = tracker.Evidence{Kind: tracker.EvidenceTimer, State: tracker.TimeWait}, tracker.Evidence{}
		c.Diagnoses = append(c.Diagnoses,
			tracker.Diagnosis{ID: tracker.DiagHalfClosed, Side: tracker.ClientSide, Detail: tracker.Detail{Kind: tracker.DetailCloseWait, D: 500 * time.Microsecond}},
			tracker.Diagnosis{ID: tracker.DiagMiddleboxReset, Side: tracker.ClientSide, Detail: tracker.Detail{Kind: tracker.DetailForgedReset, N: [3]uint64{7}, Misfit: tracker.Misfit{TTL: 64, HostTTL: 63}}})
		c.Zeek.RowsDropped = uint64(i)
		c.Zeek.History = odd
		c.Evicted, c.TimedOut = i%2 == 0, i%3 == 0
		c.AsOf = o.Now.Add(-time.Duration(i) * time.Second)
		c.Client.Deadline = o.Now.Add(time.Duration(i) * 1500 * time.Millisecond)
		c.Tunnel, c.TunnelSrc, c.TunnelDst = capture.TunnelVXLAN, "192.0.2.1", "2001:db8::1"
		if i%4 == 1 {
			c.Client.Addr = netip.AddrPortFrom(netip.MustParseAddr("fe80::1%eth<0>\"x"), 443)
		}
		c.Reuses, c.ReusedBy, c.Midstream = uint64(i), uint64(i*2), i%2 == 1
		check("synthetic", c, o)
	}
	t.Logf("%d connections from %d captures, %d synthetic", n-len(sample), len(files), len(sample))
}

// TestAppendJSONString holds appendJSONString to encoding/json on every byte alone, between
// plain text, and on strings of random bytes (invalid UTF-8, U+2028, HTML characters).
func TestAppendJSONString(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	}
	check("")
	for c := range 256 {
		check(string([]byte{byte(c)}))
		check("plain " + string([]byte{byte(c)}) + " text")
	}
	for _, s := range []string{"\u2028", "a\u2029b", "é", "日本", "\xff\xfe", "<a href=\"x\">&amp;</a>", `back\slash`} {
		check(s)
	}
	r := uint64(1)
	for range 20000 {
		n := int(r>>59) + 1
		b := make([]byte, n)
		for i := range b {
			r = r*6364136223846793005 + 1442695040888963407
			b[i] = byte(r >> 56)
			if r>>50&3 != 0 {
				b[i] &= 0x7f // mostly ASCII, so runs of plain text occur
			}
		}
		check(string(b))
	}
}

// TestAppendDateTime holds appendDateTime to time.Time.AppendFormat: every day of 1970-2100
// at random times of day, random instants up to year 9999, and the edges.
func TestAppendDateTime(t *testing.T) {
	check := func(tm time.Time) {
		t.Helper()
		tm = tm.UTC()
		want := tm.AppendFormat(nil, "2006-01-02T15:04:05")
		if got := appendDateTime(nil, tm); string(got) != string(want) {
			t.Fatalf("appendDateTime(%d) = %s, AppendFormat gives %s", tm.Unix(), got, want)
		}
	}
	r := uint64(7)
	rnd := func(n int64) int64 {
		r = r*6364136223846793005 + 1442695040888963407
		return int64(r>>1) % n
	}
	for day := int64(0); day < 131*366; day++ {
		check(time.Unix(day*86400+rnd(86400), rnd(1e9)))
	}
	for range 200000 {
		check(time.Unix(rnd(maxDateTimeSec+1), 0))
	}
	for _, sec := range []int64{-1, 0, 59, 951782400, 951868800, 4107542400, 4107628800, maxDateTimeSec, maxDateTimeSec + 1, -62135596800} {
		check(time.Unix(sec, 0))
	}
}

// TestAppendSeconds holds appendSeconds to appendJSONFloat(d.Seconds()) (encoding/json's
// float) on random durations of every magnitude and on the edges of its fast path.
func TestAppendSeconds(t *testing.T) {
	check := func(d time.Duration) {
		t.Helper()
		want := appendJSONFloat(nil, d.Seconds())
		if got := appendSeconds(nil, d); string(got) != string(want) {
			t.Fatalf("appendSeconds(%d) = %s, want %s", d, got, want)
		}
	}
	r := uint64(11)
	for range 1000000 {
		r = r*6364136223846793005 + 1442695040888963407
		d := time.Duration(r >> (r >> 58))
		check(d)
		check(d.Round(time.Millisecond))
		check(d.Round(time.Second))
	}
	for _, d := range []time.Duration{0, 1, 999, 1000, 1001, 1e9, 60e9, 1e15 - 1, 1e15, 1<<63 - 1} {
		check(d)
	}
}

// TestPlainWord holds plainWord to jsonPlain, byte by byte, on words with one byte of every
// value at every position among plain bytes, and on random words.
func TestPlainWord(t *testing.T) {
	check := func(w []byte) {
		t.Helper()
		want := true
		for _, c := range w {
			want = want && jsonPlain[c]
		}
		if got := plainWord(&w[0]); got != want {
			t.Fatalf("plainWord(%q) = %v, want %v", w, got, want)
		}
	}
	for c := range 256 {
		for pos := range 8 {
			for _, fill := range []byte{'a', ' ', '~', 0x21, 0x7e, '=', '?', '%'} {
				w := []byte{fill, fill, fill, fill, fill, fill, fill, fill}
				w[pos] = byte(c)
				check(w)
			}
		}
	}
	r := uint64(3)
	for range 1000000 {
		r = r*6364136223846793005 + 1442695040888963407
		var w [8]byte
		for i := range w {
			w[i] = byte(r >> (8 * i))
			if r>>(60-i)&1 == 0 {
				w[i] &= 0x7f
			}
		}
		check(w[:])
	}
}
