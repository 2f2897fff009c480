package flowtable

import (
	"testing"

	"github.com/tcpstate/tcpstate/tracker"
)

// TestQuietIndex: a streaming table moves each connection that closes at both ends from the
// index of open ones to the quiet index, every current instance is in exactly one of them, and
// a late copy of a closed connection's last packet still finds it there (a duplicate, not a
// new connection).
func TestQuietIndex(t *testing.T) {
	var finished []*tracker.Conn
	tr := New(Config{Stream: &StreamConfig{OnFinished: func(c *tracker.Conn) { finished = append(finished, c) }, Handoff: true}})
	segs := feed(t, tr, "mixed-40")
	open, quiet := 0, 0
	for ei := int32(0); ei < tr.ents.n; ei++ {
		e := tr.ents.at(ei)
		switch e.state {
		case entIndexed:
			open++
			if tr.index.position(e.hashLo, ei) < 0 || tr.quiet.position(e.hashLo, ei) >= 0 {
				t.Errorf("entry %d (open) is not in the index alone", ei)
			}
		case entQuiet:
			quiet++
			if tr.quiet.position(e.hashLo, ei) < 0 || tr.index.position(e.hashLo, ei) >= 0 {
				t.Errorf("entry %d (closed) is not in the quiet index alone", ei)
			}
			l := tr.wake(ei)
			if !ended(l.c.Client.State) || !ended(l.c.Server.State) {
				t.Errorf("#%d in the quiet index in %v/%v", l.c.ID, l.c.Client.State, l.c.Server.State)
			}
		}
	}
	if quiet == 0 || open == 0 || tr.index.n != open || tr.quiet.n != quiet {
		t.Fatalf("%d open and %d closed entries; the indexes hold %d and %d", open, quiet, tr.index.n, tr.quiet.n)
	}
	// The last packet of a closed connection, again: a duplicate of it.
	var late *tracker.Conn
	for ei := int32(0); ei < tr.ents.n && late == nil; ei++ {
		if e := tr.ents.at(ei); e.state == entQuiet {
			late = &tr.wake(ei).c
		}
	}
	var seg = segs[0]
	for _, s := range segs {
		if s.Src == late.Client.Addr && s.Dst == late.Server.Addr || s.Src == late.Server.Addr && s.Dst == late.Client.Addr {
			seg = s
		}
	}
	conns, dups := tr.stats.Connections, late.Duplicates
	tr.Add(&seg)
	if tr.stats.Connections != conns || late.Duplicates != dups+1 {
		t.Errorf("a copy of #%d's last packet: %d connections (was %d), %d duplicates (was %d)",
			late.ID, tr.stats.Connections, conns, late.Duplicates, dups)
	}
	tr.Finish(seg.Time)
	if len(finished) != int(tr.stats.Connections) || tr.index.n != 0 || tr.quiet.n != 0 {
		t.Errorf("%d of %d connections handed out at the end; %d and %d left in the indexes",
			len(finished), tr.stats.Connections, tr.index.n, tr.quiet.n)
	}
}
