package report

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/reassembly"
	"github.com/tcpstate/tcpstate/tracker"
)

// The HTML report is one self-contained page: the CSS, the script and the data are inlined,
// so it opens from a ticket attachment with no network. The data is one JSON object in a
// <script type="application/json" id="tcpstate-data"> element, built for size: connections are
// positional arrays, times are integer microseconds relative to the capture start (packets:
// relative to the previous packet), sequence numbers are relative and stored as the
// difference from what was expected, and repeated strings (addresses, details) are interned.
// The layout is described in the data itself ("layout") and in htmlassets/report.js (decode).

//go:embed htmlassets/report.html
var htmlPage string

//go:embed htmlassets/report.css
var htmlCSS string

//go:embed htmlassets/report.js
var htmlJS string

// HTMLFormat is the version of the embedded data layout.
const HTMLFormat = 1

// Packets kept per connection for the ladder diagram: the first HTMLHeadPackets and the last
// HTMLTailPackets. Those in between are counted, and the ones worth a timeline marker (SYN, FIN,
// RST, retransmission, zero window) are kept as markers, up to htmlMaxMarks.
const (
	HTMLHeadPackets = 1500
	HTMLTailPackets = 500
	htmlMaxMarks    = 2000
)

// Bits of a packet's code in the embedded data (see report.js).
const (
	codeDir     = 1 << 8  // sent by the server
	codeKind    = 1 << 9  // 3 bits: reassembly.Kind
	codeZeroWin = 1 << 12 // advertises a zero window
	codeHasSeq  = 1 << 13 // a seq delta follows
	codeHasAck  = 1 << 14 // an ack delta follows
	codeHasLen  = 1 << 15 // a payload length follows
	codeFile    = 1 << 16 // input file index, above all the rest
)

// htmlPkt is one packet as the report keeps it, in 32 bytes (a capture holds millions).
type htmlPkt struct {
	t        int64 // UnixNano
	pkt      uint64
	seq, ack capture.Seq
	plen     uint32
	file     uint16
	flags    capture.Flags
	meta     uint8 // kind (3 bits) | metaServer | metaZeroWin
}

const (
	metaServer  = 1 << 3 // sent by the server
	metaZeroWin = 1 << 4 // advertises a zero window
)

func (p *htmlPkt) kind() reassembly.Kind { return reassembly.Kind(p.meta & 7) }
func (p *htmlPkt) fromSrv() bool         { return p.meta&metaServer != 0 }
func (p *htmlPkt) zeroWin() bool         { return p.meta&metaZeroWin != 0 }

// htmlChange is one state change; its reason is a slice of the collector's reason arena.
type htmlChange struct {
	t    int64
	pkt  uint64
	roff uint32
	rlen uint16
	file uint16
	code uint8 // side<<4 | new state
}

func (ch *htmlChange) side() tracker.Side   { return tracker.Side(ch.code >> 4) }
func (ch *htmlChange) state() tracker.State { return tracker.State(ch.code & 15) }

// htmlConn is what the collector keeps of one connection.
type htmlConn struct {
	head    []htmlPkt
	tail    []htmlPkt // ring of the latest packets once head is full
	tailPos int       // next slot to overwrite in tail
	elided  int       // packets dropped from the middle
	marks   []htmlPkt // markers among the dropped ones
	changes []htmlChange
	init    [2]tracker.State // each side's state before its first change
	inited  [2]bool
}

// HTMLCollector gathers, through the tracker's hooks, what the HTML report draws that the
// connections alone do not hold: each connection's packets (capped, see HTMLHeadPackets) and
// its state changes over time. Install it only when a report is wanted: it keeps per-packet
// data for the whole capture.
type HTMLCollector struct {
	conns   []*htmlConn // by connection ID - 1
	first   int64       // time of the first segment (UnixNano; 0: none yet)
	segs    uint64
	reasons []byte // every change's reason, end to end
}

func (h *HTMLCollector) reason(ch *htmlChange) string {
	return string(h.reasons[ch.roff : ch.roff+uint32(ch.rlen)])
}

// NewHTMLCollector returns an empty collector.
func NewHTMLCollector() *HTMLCollector { return &HTMLCollector{} }

// Attach installs the collector's hooks in cfg, after whatever OnEvent and OnSegment cfg
// already has (both still run, the existing one first).
func (h *HTMLCollector) Attach(cfg *flowtable.Config) {
	if prev := cfg.OnEvent; prev != nil {
		cfg.OnEvent = func(e tracker.Event) { prev(e); h.OnEvent(e) }
	} else {
		cfg.OnEvent = h.OnEvent
	}
	if prev := cfg.OnSegment; prev != nil {
		cfg.OnSegment = func(c *tracker.Conn, s *capture.Segment, k reassembly.Kind) { prev(c, s, k); h.OnSegment(c, s, k) }
	} else {
		cfg.OnSegment = h.OnSegment
	}
}

func (h *HTMLCollector) conn(id uint64) *htmlConn {
	for uint64(len(h.conns)) < id {
		h.conns = append(h.conns, nil)
	}
	hc := h.conns[id-1]
	if hc == nil {
		hc = &htmlConn{}
		h.conns[id-1] = hc
	}
	return hc
}

func (h *HTMLCollector) lookup(id uint64) *htmlConn {
	if id == 0 || id > uint64(len(h.conns)) {
		return nil
	}
	return h.conns[id-1]
}

// OnEvent records a state change (flowtable.Config.OnEvent).
func (h *HTMLCollector) OnEvent(e tracker.Event) {
	hc := h.conn(e.ConnID)
	if e.Side <= tracker.ServerSide && !hc.inited[e.Side] {
		hc.init[e.Side], hc.inited[e.Side] = e.Old, true
	}
	if hc.changes == nil {
		hc.changes = make([]htmlChange, 0, 10) // a whole open and close: no regrowth
	}
	at := len(h.reasons)
	h.reasons = AppendReason(h.reasons, &e)
	if len(h.reasons) > at+1000 {
		h.reasons = h.reasons[:at+1000]
	}
	if len(h.reasons) > math.MaxUint32 {
		h.reasons = h.reasons[:at]
	}
	hc.changes = append(hc.changes, htmlChange{t: e.Time.UnixNano(), pkt: e.Packet, roff: uint32(at),
		rlen: uint16(len(h.reasons) - at), file: e.File, code: uint8(e.Side)<<4 | uint8(e.New)})
}

// OnSegment records a packet (flowtable.Config.OnSegment).
func (h *HTMLCollector) OnSegment(c *tracker.Conn, seg *capture.Segment, kind reassembly.Kind) {
	h.segs++
	t := seg.Time.UnixNano()
	if h.first == 0 || t < h.first {
		h.first = t
	}
	hc := h.conn(c.ID)
	p := htmlPkt{t: t, pkt: seg.Packet, seq: seg.Seq, ack: seg.Ack, plen: seg.PayloadLen, file: seg.File,
		flags: seg.Flags, meta: uint8(kind) & 7}
	if c.SideOf(seg) == tracker.ServerSide {
		p.meta |= metaServer
	}
	if seg.Window == 0 && seg.Flags&capture.RST == 0 {
		p.meta |= metaZeroWin
	}
	if len(hc.head) < HTMLHeadPackets {
		hc.head = append(hc.head, p)
		return
	}
	if len(hc.tail) < HTMLTailPackets {
		hc.tail = append(hc.tail, p)
		return
	}
	old := hc.tail[hc.tailPos]
	hc.tail[hc.tailPos] = p
	hc.tailPos = (hc.tailPos + 1) % HTMLTailPackets
	hc.elided++
	if markWorthy(&old) && len(hc.marks) < htmlMaxMarks {
		hc.marks = append(hc.marks, old)
	}
}

func markWorthy(p *htmlPkt) bool {
	return p.flags&(capture.SYN|capture.FIN|capture.RST) != 0 || p.kind() == reassembly.Retransmission || p.zeroWin()
}

// packets returns the kept packets in order (head, then the tail ring unrolled).
func (hc *htmlConn) packets() []htmlPkt {
	if len(hc.tail) == 0 {
		return hc.head
	}
	out := make([]htmlPkt, 0, len(hc.head)+len(hc.tail))
	out = append(out, hc.head...)
	out = append(out, hc.tail[hc.tailPos:]...)
	return append(out, hc.tail[:hc.tailPos]...)
}

// HTMLInfo describes the capture in the page's header.
type HTMLInfo struct {
	Files   []string
	Filter  string
	Version string // of tcpstate
}

// htmlMeta is the data object's fixed part; the connections follow it.
type htmlMeta struct {
	Format    int               `json:"format"`
	Tool      string            `json:"tool"`
	Files     []string          `json:"files"`
	Filter    string            `json:"filter"`
	Naming    string            `json:"naming"`
	Names     []string          `json:"names"` // state names per --names, indexed by state code
	Canonical []string          `json:"canonical"`
	Profile   string            `json:"profile"`
	Start     string            `json:"start"` // capture start (first packet), RFC 3339
	StartUS   int64             `json:"start_us"`
	End       int64             `json:"end"`  // µs from start: the instant the states are reported for
	Last      int64             `json:"last"` // µs from start: last packet
	Packets   uint64            `json:"packets"`
	Segments  uint64            `json:"segments"` // packets including capture duplicates
	Conns     int               `json:"conn_count"`
	Problems  int               `json:"problems"`
	States    [2][]int          `json:"state_counts"` // [client, server][state]
	Diags     []string          `json:"diags"`
	Problem   []bool            `json:"diag_problem"`
	DiagCount []int             `json:"diag_counts"`
	Kinds     []string          `json:"kinds"`
	Codes     []int64           `json:"codes"` // packet codes, by the index the packets hold
	Head      int               `json:"head_packets"`
	Tail      int               `json:"tail_packets"`
	Layout    map[string]string `json:"layout"`
	Hosts     []string          `json:"hosts"`
	Strings   []string          `json:"strings"`
}

var htmlLayout = map[string]string{
	"conn": "[id, client host, client port, server host, server port, first µs, duration µs, packets, bytes, " +
		"client state, server state, bits (1 client inferred, 2 server inferred, 4 midstream, 8 roles inferred), " +
		"client evidence, server evidence, diagnoses [diag, side, detail]..., initial states (client*16+server), " +
		"changes [side*16+state, packet index (its time is the packet's) or -(1 + 2*µs from first + 1 if by a timer)]..., packets, " +
		"elided [count, head count, (µs from first, code index)...], zeek conn_state, zeek history, ended by, " +
		"reuses, reused by, reasons [one per change] or []]",
	"packet": "µs since the previous packet, code index into codes, [relative seq minus expected], " +
		"[relative ack minus expected], [payload length], packet number minus the previous",
	"codes": "flags | 256 server | 512*kind | 4096 zero window | 8192 seq follows | 16384 ack follows | " +
		"32768 length follows | 65536*file",
	"strings": "indexes into strings; -1: none",
}

// WriteHTMLFile writes the report to path.
func WriteHTMLFile(path string, conns []*tracker.Conn, h *HTMLCollector, info HTMLInfo, o *Options) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = WriteHTML(w, conns, h, info, o)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--html %s: %w", path, err)
	}
	return nil
}

// WriteHTML writes the self-contained report page for conns; h holds what the tracker's hooks
// gave while the capture was read (nil: the page shows no packets or state history).
func WriteHTML(w io.Writer, conns []*tracker.Conn, h *HTMLCollector, info HTMLInfo, o *Options) error {
	if h == nil {
		h = NewHTMLCollector()
	}
	enc := newHTMLEncoder(h, conns, o)
	meta := enc.meta(conns, info, o)

	title := "tcpstate report"
	if len(info.Files) > 0 {
		title += ": " + strings.Join(info.Files, ", ")
	}
	before, after, ok := strings.Cut(htmlPage, "<!--DATA-->")
	if !ok {
		return fmt.Errorf("report template has no data marker")
	}
	r := strings.NewReplacer("{{TITLE}}", htmlEscape(title), "/*CSS*/", htmlCSS)
	after = strings.Replace(after, "/*JS*/", htmlJS, 1)
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(r.Replace(before))
	bw.WriteString(`<script type="application/json" id="tcpstate-data">{"conns":[`)
	// The connections stream out first: encoding them fills the tables (hosts, strings,
	// codes) that follow them in the same object.
	var b []byte
	for i, c := range ProblemsFirst(conns) {
		b = b[:0]
		if i > 0 {
			b = append(b, ',')
		}
		if _, err := bw.Write(enc.conn(b, c)); err != nil {
			return err
		}
	}
	meta.Hosts, meta.Strings, meta.Codes = enc.hosts.list, enc.strs.list, enc.codes
	mj, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	bw.WriteString("],")
	bw.Write(mj[1:])
	bw.WriteString("</script>")
	bw.WriteString(after)
	return bw.Flush()
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// interner numbers distinct strings in order of first use.
type interner struct {
	idx  map[string]int
	list []string
}

func (in *interner) id(s string) int {
	if s == "" {
		return -1
	}
	if i, ok := in.idx[s]; ok {
		return i
	}
	if in.idx == nil {
		in.idx = map[string]int{}
	}
	in.idx[s] = len(in.list)
	in.list = append(in.list, s)
	return len(in.list) - 1
}

type htmlEncoder struct {
	h       *HTMLCollector
	start   int64 // UnixNano of the capture start
	hosts   interner
	strs    interner
	diags   map[string]int
	dlist   []string
	budget  int // connections (in problems-first order) that still get their change reasons
	details int // connections with diagnoses that still get their details
	codes   []int64
	codeIx  map[int64]int64
}

// code returns the index of a packet code in the codes table: a capture has few distinct ones.
func (e *htmlEncoder) code(c int64) int64 {
	i, ok := e.codeIx[c]
	if !ok {
		i = int64(len(e.codes))
		e.codeIx[c] = i
		e.codes = append(e.codes, c)
	}
	return i
}

// reasonBudget: the reasons of state changes are text unique to each connection; the page
// keeps them for this many connections, problems first, so a capture of a million
// connections stays a page a browser opens.
const reasonBudget = 5000

// detailBudget: the same for diagnosis details (a SYN flood gives a million connections each
// with its own one-line detail; the page keeps the details of the first 20,000, problems first).
const detailBudget = 20000

func newHTMLEncoder(h *HTMLCollector, conns []*tracker.Conn, o *Options) *htmlEncoder {
	e := &htmlEncoder{h: h, start: h.first, diags: map[string]int{}, budget: reasonBudget, details: detailBudget, codeIx: map[int64]int64{}}
	for _, c := range conns {
		if t := c.FirstSeen.UnixNano(); e.start == 0 || t < e.start {
			e.start = t
		}
	}
	for _, id := range tracker.AllDiagnoses {
		e.diag(id)
	}
	return e
}

func (e *htmlEncoder) diag(id string) int {
	if i, ok := e.diags[id]; ok {
		return i
	}
	e.diags[id] = len(e.dlist)
	e.dlist = append(e.dlist, id)
	return len(e.dlist) - 1
}

// us converts a time to microseconds from the capture start.
func (e *htmlEncoder) us(t int64) int64 { return (t - e.start) / 1000 }

func (e *htmlEncoder) meta(conns []*tracker.Conn, info HTMLInfo, o *Options) *htmlMeta {
	s := Summarize(conns)
	m := &htmlMeta{Format: HTMLFormat, Tool: strings.TrimSpace("tcpstate " + info.Version), Files: info.Files, Filter: info.Filter,
		Naming: namingName(o.Names), Profile: o.Profile.Name, Packets: s.Packets, Segments: e.h.segs,
		Conns: s.Conns, Problems: s.Problems, Head: HTMLHeadPackets, Tail: HTMLTailPackets, Layout: htmlLayout}
	if m.Files == nil {
		m.Files = []string{}
	}
	var last int64
	for _, c := range conns {
		last = max(last, e.us(c.LastSeen.UnixNano()))
	}
	m.Last = last
	m.End = last
	if !o.Now.IsZero() {
		m.End = e.us(o.Now.UnixNano())
	}
	if e.start != 0 {
		st := time.Unix(0, e.start).UTC()
		m.Start = st.Format(TimeFormat)
		m.StartUS = e.start / 1000
	}
	for st := tracker.Closed; st <= tracker.TimeWait; st++ {
		m.Names = append(m.Names, st.Name(o.Names))
		m.Canonical = append(m.Canonical, st.String())
		m.States[0] = append(m.States[0], s.ClientState[st])
		m.States[1] = append(m.States[1], s.ServerState[st])
	}
	for _, c := range conns {
		for _, d := range c.Diagnoses {
			e.diag(d.ID)
		}
	}
	m.Diags = e.dlist
	for _, id := range e.dlist {
		m.Problem = append(m.Problem, tracker.Problem(id))
		m.DiagCount = append(m.DiagCount, s.Diagnoses[id])
	}
	for k := reassembly.AckOnly; k <= reassembly.Duplicate; k++ {
		m.Kinds = append(m.Kinds, k.String())
	}
	return m
}

func namingName(n tracker.Naming) string {
	switch n {
	case tracker.NamesLinux:
		return "linux"
	case tracker.NamesWindows:
		return "windows"
	case tracker.NamesBSD:
		return "bsd"
	}
	return "rfc"
}

func appendInts(b []byte, vs ...int64) []byte {
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, v, 10)
	}
	return b
}

func boolBit(b bool, bit int64) int64 {
	if b {
		return bit
	}
	return 0
}

func (e *htmlEncoder) conn(b []byte, c *tracker.Conn) []byte {
	hc := e.h.lookup(c.ID)
	if hc == nil {
		hc = &htmlConn{}
	}
	first := e.us(c.FirstSeen.UnixNano())
	evidence := func(ep *tracker.Endpoint) int64 {
		if !ep.Inferred {
			return -1
		}
		return int64(e.strs.id(EvidenceText(&ep.Evidence)))
	}
	bits := boolBit(c.Client.Inferred, 1) | boolBit(c.Server.Inferred, 2) | boolBit(c.Midstream, 4) | boolBit(c.RoleInferred, 8)
	b = append(b, '[')
	b = appendInts(b, int64(c.ID),
		int64(e.hosts.id(c.Client.Addr.Addr().String())), int64(c.Client.Addr.Port()),
		int64(e.hosts.id(c.Server.Addr.Addr().String())), int64(c.Server.Addr.Port()),
		first, e.us(c.LastSeen.UnixNano())-first, int64(c.Packets), int64(c.Bytes),
		int64(c.Client.State), int64(c.Server.State), bits, evidence(&c.Client), evidence(&c.Server))

	b = append(b, ",["...)
	for i := range c.Diagnoses {
		d := &c.Diagnoses[i]
		if i > 0 {
			b = append(b, ',')
		}
		detail := int64(-1)
		if e.details > 0 {
			detail = int64(e.strs.id(DetailText(c, d)))
		}
		b = appendInts(b, int64(e.diag(d.ID)), int64(d.Side), detail)
	}
	b = append(b, "],"...)

	// States over time: the initial state of each side is the old state of its first change.
	init := [2]tracker.State{c.Client.State, c.Server.State}
	for side := range init {
		if hc.inited[side] {
			init[side] = hc.init[side]
		}
	}
	b = strconv.AppendInt(b, int64(init[0])*16+int64(init[1]), 10)
	pkts := hc.packets()
	withReasons := e.budget > 0
	e.budget--
	if len(c.Diagnoses) > 0 {
		e.details--
	}
	b = append(b, ",["...)
	next := 0 // changes come in packet order: search onwards from the last match
	for i := range hc.changes {
		ch := &hc.changes[i]
		// Where: the packet that caused it, or (a timer, a packet not kept) its time.
		where := -1 - 2*max(0, e.us(ch.t)-first) - boolBit(ch.pkt == 0, 1)
		if ch.pkt > 0 {
			for j := next; j < len(pkts); j++ {
				if pkts[j].pkt == ch.pkt && pkts[j].file == ch.file {
					where, next = int64(j), j
					break
				}
			}
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendInts(b, int64(ch.code), where)
	}
	b = append(b, "],["...)
	b = encodePackets(b, pkts, first, e)
	b = append(b, "],["...)
	if hc.elided > 0 {
		b = appendInts(b, int64(hc.elided), int64(len(hc.head)))
		for i := range hc.marks {
			m := &hc.marks[i]
			b = append(b, ',')
			b = appendInts(b, e.us(m.t)-first, e.code(packetCode(m)))
		}
	}
	b = append(b, "],"...)
	b = appendInts(b, int64(e.strs.id(c.Zeek.ConnState())), int64(e.strs.id(c.Zeek.History)),
		int64(e.strs.id(Ending(c.EndedBy))), int64(c.Reuses), int64(c.ReusedBy))
	b = append(b, ",["...)
	if withReasons {
		for i := range hc.changes {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(e.strs.id(e.h.reason(&hc.changes[i]))), 10)
		}
	}
	return append(b, "]]"...)
}

// packetCode is a packet's flags, direction, kind, zero window and file, without the
// has-seq/ack/len bits.
func packetCode(p *htmlPkt) int64 {
	code := int64(p.flags) | boolBit(p.fromSrv(), codeDir) | int64(p.kind())*codeKind | boolBit(p.zeroWin(), codeZeroWin)
	return code + int64(p.file)*codeFile
}

// encodePackets writes the kept packets of one connection. Sequence numbers are relative to
// each direction's first (as Wireshark shows them: the SYN is 0, the first byte 1) and written
// as the difference from what the direction's sequence space predicts, so in-order traffic
// costs nothing: the decoder (report.js, and decodePackets in the tests) keeps the same
// prediction.
func encodePackets(b []byte, pkts []htmlPkt, first int64, e *htmlEncoder) []byte {
	var base [2]capture.Seq
	var known [2]bool
	for i := range pkts {
		p := &pkts[i]
		d := dirOf(p)
		if !known[d] {
			base[d], known[d] = p.seq, true
			if p.flags&(capture.SYN|capture.RST) == 0 {
				base[d]-- // no SYN seen: the first byte is 1
			}
		}
	}
	for i := range pkts { // a direction that sent nothing: its relative numbers start at the peer's first ACK
		p := &pkts[i]
		if d := 1 - dirOf(p); !known[d] && p.flags&capture.ACK != 0 {
			base[d], known[d] = p.ack-1, true
		}
	}
	var next [2]capture.Seq // relative: one past the highest sequence number each side sent
	prevT, prevPkt := first, int64(0)
	for i := range pkts {
		p := &pkts[i]
		d := dirOf(p)
		t := e.us(p.t)
		rel := p.seq - base[d]
		dseq := int64(int32(rel - next[d]))
		code := packetCode(p)
		var dack int64
		hasAck := p.flags&capture.ACK != 0
		if hasAck {
			dack = int64(int32(p.ack - base[1-d] - next[1-d]))
		}
		code |= boolBit(dseq != 0, codeHasSeq) | boolBit(hasAck && dack != 0, codeHasAck) | boolBit(p.plen != 0, codeHasLen)
		if i > 0 {
			b = append(b, ',')
		}
		b = appendInts(b, t-prevT, e.code(code))
		if dseq != 0 {
			b = append(b, ',')
			b = strconv.AppendInt(b, dseq, 10)
		}
		if hasAck && dack != 0 {
			b = append(b, ',')
			b = strconv.AppendInt(b, dack, 10)
		}
		if p.plen != 0 {
			b = append(b, ',')
			b = strconv.AppendUint(b, uint64(p.plen), 10)
		}
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(p.pkt)-prevPkt, 10)
		prevT, prevPkt = t, int64(p.pkt)
		end := rel + capture.Seq(p.plen)
		if p.flags&(capture.SYN) != 0 {
			end++
		}
		if p.flags&(capture.FIN) != 0 {
			end++
		}
		if p.flags&capture.RST == 0 && int32(end-next[d]) > 0 {
			next[d] = end
		}
	}
	return b
}

func dirOf(p *htmlPkt) int {
	if p.fromSrv() {
		return 1
	}
	return 0
}
