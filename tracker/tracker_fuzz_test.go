package tracker

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/reassembly"
	"github.com/tcpstate/tcpstate/zeek"
)

// fuzzTuples are the flows FuzzTracker's segments travel on (src, dst): both directions of two
// ordinary connections (IPv4, IPv6), a self-connection, two ports of one address, an
// IPv4-mapped address beside its plain form, and zero addresses and ports.
var fuzzTuples = [8][2]netip.AddrPort{
	{netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("198.51.100.1:80")},
	{netip.MustParseAddrPort("198.51.100.1:80"), netip.MustParseAddrPort("192.0.2.1:40000")},
	{netip.MustParseAddrPort("[2001:db8::1]:5555"), netip.MustParseAddrPort("[2001:db8::2]:443")},
	{netip.MustParseAddrPort("[2001:db8::2]:443"), netip.MustParseAddrPort("[2001:db8::1]:5555")},
	{netip.MustParseAddrPort("10.0.0.1:1000"), netip.MustParseAddrPort("10.0.0.1:1000")},
	{netip.MustParseAddrPort("10.0.0.1:1000"), netip.MustParseAddrPort("10.0.0.1:1001")},
	{netip.MustParseAddrPort("[::ffff:192.0.2.1]:40000"), netip.MustParseAddrPort("198.51.100.1:80")},
	{netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("255.255.255.255:0")},
}

// trackerRecord is how many input bytes make one segment in FuzzTracker:
//
//	[0] bits 0-2 tuple, bits 3-5 seq mode, bits 6-7 length mode
//	[1] flags
//	[2:6] seq argument, [6:10] ack argument, [10:12] length argument (big endian)
//	[12] bits 0-2 ack mode, bits 3-5 time step, bit 6 window-scale option, bit 7 bad checksum
//	[13] window scale, [14:16] window
const trackerRecord = 16

// trackerSegment decodes one record. Sequence and acknowledgment numbers are mostly chosen
// relative to what the tuple's current connection has seen, so inputs reach handshakes,
// closes, resets in and out of window and port reuse rather than only random numbers.
func trackerSegment(tr *testTable, rec []byte, n uint64, now *time.Time) capture.Segment {
	var r [trackerRecord]byte
	copy(r[:], rec)
	tu := fuzzTuples[r[0]&7]
	s := capture.Segment{Src: tu[0], Dst: tu[1], Flags: capture.Flags(r[1]), Packet: n, Offset: int64(n) * 100,
		Window: binary.BigEndian.Uint16(r[14:16]), BadChecksum: r[12]&0x80 != 0}
	var own, peer reassembly.Direction
	if c := tr.current(s.Src, s.Dst); c != nil {
		from := c.sideOf(&s)
		own, peer = c.Dir[from], c.Dir[1-from]
	}
	s.Seq = capture.Seq(fuzzSeq(r[0]>>3&7, binary.BigEndian.Uint32(r[2:6]), &own))
	s.Ack = capture.Seq(fuzzSeq(r[12]&7, binary.BigEndian.Uint32(r[6:10]), &peer))
	lenArg := uint32(binary.BigEndian.Uint16(r[10:12]))
	switch r[0] >> 6 {
	case 0:
		s.PayloadLen = lenArg
	case 1:
		s.PayloadLen = 0
	case 2:
		s.PayloadLen = lenArg & 3
	case 3:
		s.PayloadLen = min(lenArg<<14, 1<<30)
	}
	s.IPLen = 40 + s.PayloadLen
	if r[12]&0x40 != 0 {
		s.Opts.Has |= capture.HasWScale
		s.Opts.WScale = r[13]
	}
	steps := [8]time.Duration{0, 100 * time.Microsecond, 10 * time.Millisecond, time.Second,
		30 * time.Second, 2 * time.Minute, 2 * time.Hour, -time.Second}
	*now = now.Add(steps[r[12]>>3&7])
	s.Time = *now
	return s
}

func fuzzSeq(mode uint8, arg uint32, d *reassembly.Direction) uint32 {
	next := uint32(d.Next)
	switch mode {
	case 0:
		return next + uint32(int32(int16(arg)))
	case 1:
		return next + arg
	case 2:
		return arg
	case 3:
		return next - 1
	case 4:
		return uint32(d.ISN) + arg&3
	case 5:
		return next + 1<<31 + uint32(int32(int8(arg)))
	case 6:
		return [4]uint32{0, 1 << 31, 1<<32 - 1, 1<<31 - 1}[arg&3] + arg>>2&7
	default:
		return uint32(d.Acked) + uint32(int32(int16(arg)))
	}
}

// connSnapshot is what Finish decides about a connection, for comparing two Finish calls.
type connSnapshot struct {
	Client, Server Endpoint
	Diagnoses      []Diagnosis
	EndedBy        Ending
	Zeek           []zeek.Row
	ZeekState      string
}

func snapshot(c *Conn) connSnapshot {
	return connSnapshot{c.Client, c.Server, append([]Diagnosis(nil), c.Diagnoses...), c.EndedBy,
		c.Zeek.Rows(), c.Zeek.ConnState()}
}

// FuzzTracker feeds segments decoded from arbitrary bytes, on a few 4-tuples, to a Tracker.
// Nothing may panic; every connection's states are valid and agree with the events that
// announced them; the counters add up; per-connection state stays bounded; and Finish, called
// again for the same instant, changes nothing.
func FuzzTracker(f *testing.F) {
	hs := func(tu, rtu uint8) []byte {
		return fuzzTrackerRecords(
			trec(tu, S, 2, 100, 2, 0, 1, 0, 0, 1000),
			trec(rtu, S|A, 2, 500, 0, 0, 1, 0, 2, 1000), // ack = client's Next (101)
			trec(tu, A, 0, 0, 0, 0, 1, 0, 2, 1000),
		)
	}
	// A whole connection: handshake, data, close both ways, then TIME_WAIT expires.
	f.Add(append(hs(0, 1), fuzzTrackerRecords(
		trec(0, A|P, 0, 0, 0, 0, 0, 500, 2, 1000),
		trec(1, A, 0, 0, 0, 0, 1, 0, 2, 1000),
		trec(0, A|F, 0, 0, 0, 0, 1, 0, 2, 1000),
		trec(1, A|F, 0, 0, 0, 0, 1, 0, 2, 1000),
		trec(0, A, 0, 0, 0, 0, 1, 0, 5, 1000),
	)...))
	// Refused, forged resets, port reuse, IPv6, a self-connection.
	f.Add(append(hs(2, 3), fuzzTrackerRecords(
		trec(3, R, 0, 5000, 0, 0, 1, 0, 2, 0), // in window, not exact: challenge
		trec(2, A, 0, 0, 0, 0, 1, 0, 2, 1000), // challenge ACK
		trec(3, R|A, 0, 0, 0, 0, 1, 0, 2, 0),  // exact
		trec(2, S, 2, 9000, 2, 0, 1, 0, 4, 1000),
		trec(4, S, 2, 1, 2, 0, 1, 0, 2, 1000),
		trec(4, S|A, 2, 1, 0, 0, 1, 0, 2, 1000),
		trec(5, S, 2, 7, 2, 0, 1, 0, 2, 1000),
		trec(5, R|A, 2, 0, 0, 1, 1, 0, 2, 0),
	)...))
	// Midstream, zero windows and probes, jumbo payloads, every flag, times going backwards.
	f.Add(fuzzTrackerRecords(
		trec(6, A|P, 2, 1<<31-10, 2, 1<<32-1, 3, 4, 1, 0),
		trec(1, A, 2, 77, 0, 0, 1, 0, 2, 0),
		trec(6, A, 3, 0, 0, 0, 2, 1, 3, 0),
		trec(7, S|F|R|P|A|capture.URG|capture.ECE|capture.CWR, 6, 3, 6, 2, 0, 0xFFFF, 7, 0xFFFF),
		trec(7, 0, 5, 0x80, 5, 0x7F, 0, 0, 6, 0),
	))
	var events []Event
	f.Fuzz(func(t *testing.T, data []byte) {
		events = events[:0]
		tr := newTestTable(Config{OnEvent: func(e Event) { events = append(events, e) }})
		now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		var n uint64
		for i := 0; i < len(data) && i < 256*trackerRecord; i += trackerRecord {
			n++
			s := trackerSegment(tr, data[i:min(i+trackerRecord, len(data))], n, &now)
			tr.Add(&s)
		}
		tr.Finish(time.Time{})
		checkTracker(t, tr, n, events)

		// Finish again for the same instant: nothing may change, no event may fire.
		before := make([]connSnapshot, len(tr.Conns()))
		for i, c := range tr.Conns() {
			before[i] = snapshot(c)
		}
		nev := len(events)
		tr.Finish(tr.Now)
		if len(events) != nev {
			t.Fatalf("second Finish fired %d events: %+v", len(events)-nev, events[nev:])
		}
		for i, c := range tr.Conns() {
			if after := snapshot(c); !reflect.DeepEqual(before[i], after) {
				t.Fatalf("conn %d: second Finish changed it:\nbefore %+v\nafter  %+v", c.ID, before[i], after)
			}
		}

		// Much later (timers run out): still consistent.
		tr.Finish(tr.Now.Add(3 * time.Hour))
		checkTracker(t, tr, n, events)
	})
}

// checkTracker checks the invariants that hold after any input and a Finish.
func checkTracker(t *testing.T, tr *testTable, n uint64, events []Event) {
	t.Helper()
	st := tr.Stats()
	conns := tr.Conns()
	if st.Segments != n || st.Connections != uint64(len(conns)) {
		t.Fatalf("stats %+v after %d segments, %d connections", st, n, len(conns))
	}
	// Each connection's states, replayed from its events.
	type key struct {
		id   uint64
		side Side
	}
	last := map[key]State{}
	for i, c := range conns {
		if c.ID != uint64(i+1) {
			t.Fatalf("connection %d has ID %d", i+1, c.ID)
		}
		if c.Midstream {
			last[key{c.ID, ClientSide}], last[key{c.ID, ServerSide}] = Established, Established
		}
	}
	for _, e := range events {
		if e.ConnID == 0 || e.ConnID > uint64(len(conns)) || e.Side > ServerSide {
			t.Fatalf("event for connection %d side %v", e.ConnID, e.Side)
		}
		if e.Old >= numStates || e.New >= numStates || e.Old == e.New {
			t.Fatalf("event %v -> %v", e.Old, e.New)
		}
		k := key{e.ConnID, e.Side}
		if last[k] != e.Old {
			t.Fatalf("connection %d %v: event from %v, but it was %v", e.ConnID, e.Side, e.Old, last[k])
		}
		last[k] = e.New
	}
	var segs, dups uint64
	for _, c := range conns {
		segs += c.Packets + c.Duplicates
		dups += c.Duplicates
		for _, side := range []Side{ClientSide, ServerSide} {
			ep := c.endpoint(side)
			if ep.State >= numStates || ep.State.String() == "UNKNOWN" {
				t.Fatalf("connection %d %v: state %d", c.ID, side, ep.State)
			}
			if ep.State != last[key{c.ID, side}] {
				t.Fatalf("connection %d %v: state %v, events left it %v", c.ID, side, ep.State, last[key{c.ID, side}])
			}
			if ep.Inferred != (ep.Evidence.Kind != EvidenceNone) {
				t.Fatalf("connection %d %v: inferred %v with evidence %+v", c.ID, side, ep.Inferred, ep.Evidence)
			}
		}
		if c.Client.Addr == c.Server.Addr && c.Client.Addr != fuzzTuples[4][0] {
			t.Fatalf("connection %d: client and server are both %v", c.ID, c.Client.Addr)
		}
		seen := map[string]bool{}
		for _, d := range c.Diagnoses {
			if seen[d.ID] || !knownDiagID(d.ID) || d.Side > BothSides || d.Detail.Kind == DetailNone || d.Detail.Kind.ID() != d.ID {
				t.Fatalf("connection %d: diagnosis %+v (duplicate, unknown, empty or of another)", c.ID, d)
			}
			seen[d.ID] = true
		}
		// Bounded per-connection state, whatever the input.
		if h := c.Dir[0].Holes() + c.Dir[1].Holes(); h > 16 {
			t.Fatalf("connection %d: %d holes", c.ID, h)
		}
		if len(c.rstNotes) > 8 {
			t.Fatalf("connection %d: %d RST notes", c.ID, len(c.rstNotes))
		}
		zrows := c.Zeek.Rows()
		if rows := uint64(len(zrows)); rows > c.Packets+c.Duplicates || c.Packets+c.Duplicates > 0 && rows == 0 {
			t.Fatalf("connection %d: %d Zeek rows for %d packets", c.ID, rows, c.Packets+c.Duplicates)
		}
		for i, r := range zrows {
			if timers := zeekRowField(&c.Zeek, i, "expireAt").Len(); len(r.History) > 64+2*int(r.Pkts[0]+r.Pkts[1]) || timers > 16 {
				t.Fatalf("connection %d: Zeek row with a %d-letter history, %d timers", c.ID, len(r.History), timers)
			}
			if r.ConnState == "" {
				t.Fatalf("connection %d: empty Zeek conn_state", c.ID)
			}
		}
		if c.Client.ev.nSYN < 0 || c.Server.ev.nSYN < 0 {
			t.Fatal("negative SYN count")
		}
	}
	if segs != n || dups != st.Duplicates {
		t.Fatalf("connections hold %d segments (%d duplicates); %d added, stats say %d duplicates", segs, dups, n, st.Duplicates)
	}
}

func knownDiagID(id string) bool {
	for _, d := range AllDiagnoses {
		if d == id {
			return true
		}
	}
	return false
}

// trec builds one FuzzTracker record (see trackerSegment) for the seeds.
func trec(tuple uint8, flags capture.Flags, seqMode uint8, seqArg uint32, ackMode uint8, ackArg uint32,
	lenMode uint8, lenArg uint16, step uint8, win uint16) []byte {
	r := make([]byte, trackerRecord)
	r[0] = tuple&7 | seqMode&7<<3 | lenMode&3<<6
	r[1] = byte(flags)
	binary.BigEndian.PutUint32(r[2:], seqArg)
	binary.BigEndian.PutUint32(r[6:], ackArg)
	binary.BigEndian.PutUint16(r[10:], lenArg)
	r[12] = ackMode&7 | step&7<<3
	binary.BigEndian.PutUint16(r[14:], win)
	return r
}

func fuzzTrackerRecords(recs ...[]byte) []byte {
	var out []byte
	for _, r := range recs {
		out = append(out, r...)
	}
	return out
}

// zeekRowField is the unexported field name of row i of a Zeek view (package zeek keeps its
// rows to itself; the bounds checked here are about memory, not about what it reports).
func zeekRowField(z *zeek.View, i int, name string) reflect.Value {
	return reflect.ValueOf(z).Elem().FieldByName("rows").Index(i).Elem().FieldByName(name)
}
