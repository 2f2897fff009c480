package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/reassembly"
	"github.com/tcpstate/tcpstate/tracker"
)

const kernelPcaps = "../testdata/pcaps/kernel/"

// htmlReport is one report built the way `tcpstate -r FILE --html` builds it.
type htmlReport struct {
	page  string
	conns []*tracker.Conn
	data  htmlData
}

// htmlData is the embedded JSON, as the page's script reads it.
type htmlData struct {
	Format    int               `json:"format"`
	Files     []string          `json:"files"`
	Naming    string            `json:"naming"`
	Names     []string          `json:"names"`
	Canonical []string          `json:"canonical"`
	Start     string            `json:"start"`
	End       int64             `json:"end"`
	Last      int64             `json:"last"`
	Packets   uint64            `json:"packets"`
	Conns     int               `json:"conn_count"`
	Problems  int               `json:"problems"`
	States    [2][]int          `json:"state_counts"`
	Diags     []string          `json:"diags"`
	Problem   []bool            `json:"diag_problem"`
	DiagCount []int             `json:"diag_counts"`
	Kinds     []string          `json:"kinds"`
	Codes     []int64           `json:"codes"`
	Head      int               `json:"head_packets"`
	Tail      int               `json:"tail_packets"`
	Layout    map[string]string `json:"layout"`
	Hosts     []string          `json:"hosts"`
	Strings   []string          `json:"strings"`
	List      []json.RawMessage `json:"conns"`
}

// Positions in a connection's array (see htmlLayout).
const (
	fID, fCH, fCP, fSH, fSP, fFirst, fDur, fPkts, fBytes, fCState, fSState, fBits = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
	fDiag, fInit, fChanges, fPackets, fElided, fZeekState, fZeekHistory           = 14, 15, 16, 17, 18, 19, 20
	fReasons, connFields                                                          = 24, 25
)

// conn returns the connection with id as its positional fields.
func (d *htmlData) conn(t *testing.T, id uint64) []json.RawMessage {
	t.Helper()
	for _, raw := range d.List {
		var f []json.RawMessage
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("connection %.80s…: %v", raw, err)
		}
		if len(f) != connFields {
			t.Fatalf("connection %.80s…: %d fields, want %d", raw, len(f), connFields)
		}
		var got uint64
		json.Unmarshal(f[fID], &got)
		if got == id {
			return f
		}
	}
	t.Fatalf("no connection #%d in the report", id)
	return nil
}

func ints(t *testing.T, raw json.RawMessage) []int64 {
	t.Helper()
	var v []int64
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return v
}

func num(t *testing.T, raw json.RawMessage) int64 {
	t.Helper()
	var v int64
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return v
}

// decodedPkt is a packet as the page draws it.
type decodedPkt struct {
	T        int64 // µs from the connection's first packet
	FromSrv  bool
	Flags    capture.Flags
	Kind     string
	ZeroWin  bool
	File     int
	Seq, Ack uint32
	HasAck   bool
	Len      int64
	Packet   int64
}

func (p decodedPkt) String() string {
	dir := "c>s"
	if p.FromSrv {
		dir = "s>c"
	}
	s := fmt.Sprintf("%s [%s] seq %d", dir, p.Flags, p.Seq)
	if p.HasAck {
		s += fmt.Sprintf(" ack %d", p.Ack)
	}
	s += fmt.Sprintf(" len %d", p.Len)
	if p.Kind != "new" && p.Kind != "ack" {
		s += " " + p.Kind
	}
	return s
}

// decodePackets is report.js's decodePackets in Go: it proves the encoding round-trips.
func decodePackets(t *testing.T, d *htmlData, a []int64) []decodedPkt {
	t.Helper()
	var out []decodedPkt
	var next [2]uint32
	var tm, pkt int64
	for i := 0; i < len(a); {
		if i+2 > len(a) {
			t.Fatalf("packet data ends inside a record at %d of %d", i, len(a))
		}
		tm += a[i]
		code := d.Codes[a[i+1]]
		i += 2
		p := decodedPkt{T: tm, Flags: capture.Flags(code & 255), FromSrv: code&codeDir != 0,
			Kind: d.Kinds[(code>>9)&7], ZeroWin: code&codeZeroWin != 0, File: int(code / codeFile)}
		dir := 0
		if p.FromSrv {
			dir = 1
		}
		var dseq, dack int64
		if code&codeHasSeq != 0 {
			dseq, i = a[i], i+1
		}
		if code&codeHasAck != 0 {
			dack, i = a[i], i+1
		}
		if code&codeHasLen != 0 {
			p.Len, i = a[i], i+1
		}
		pkt += a[i]
		i++
		p.Packet = pkt
		p.Seq = next[dir] + uint32(dseq)
		if p.Flags.Has(capture.ACK) {
			p.HasAck, p.Ack = true, next[1-dir]+uint32(dack)
		}
		end := p.Seq + uint32(p.Len)
		if p.Flags.Has(capture.SYN) {
			end++
		}
		if p.Flags.Has(capture.FIN) {
			end++
		}
		if !p.Flags.Has(capture.RST) && int32(end-next[dir]) > 0 {
			next[dir] = end
		}
		out = append(out, p)
	}
	return out
}

// buildHTML reads captures through the tracker with the collector attached, as main does.
func buildHTML(t *testing.T, names tracker.Naming, files ...string) *htmlReport {
	t.Helper()
	r, errs := buildHTMLErrs(t, names, files...)
	for _, e := range errs {
		t.Fatal(e)
	}
	return r
}

// buildHTMLErrs is buildHTML for damaged captures: what was read before the damage is reported.
func buildHTMLErrs(t *testing.T, names tracker.Naming, files ...string) (*htmlReport, []*capture.ReadError) {
	t.Helper()
	src, err := capture.OpenFiles(files, capture.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	prof, _ := tracker.LookupProfile("linux")
	cfg := flowtable.Config{Profile: prof}
	col := NewHTMLCollector()
	col.Attach(&cfg)
	tr := flowtable.New(cfg)
	var seg capture.Segment
	for src.Next(&seg) {
		tr.Add(&seg)
	}
	tr.Finish(time.Time{})
	o := &Options{Names: names, Profile: prof, Now: tr.Now}
	var b bytes.Buffer
	// Named as from the repository's root, as `tcpstate -r testdata/...` shows them.
	shown := make([]string, len(files))
	for i, f := range files {
		shown[i] = strings.TrimPrefix(f, "../")
	}
	if err := WriteHTML(&b, tr.Conns(), col, HTMLInfo{Files: shown}, o); err != nil {
		t.Fatal(err)
	}
	r := &htmlReport{page: b.String(), conns: tr.Conns()}
	r.data = parseHTMLData(t, r.page)
	return r, src.Errs()
}

var dataRE = regexp.MustCompile(`(?s)<script type="application/json" id="tcpstate-data">(.*?)</script>`)

func parseHTMLData(t *testing.T, page string) htmlData {
	t.Helper()
	m := dataRE.FindAllStringSubmatch(page, -1)
	if len(m) != 1 {
		t.Fatalf("%d data blocks in the page, want 1", len(m))
	}
	var d htmlData
	if err := json.Unmarshal([]byte(m[0][1]), &d); err != nil {
		t.Fatalf("embedded data is not JSON: %v", err)
	}
	if d.Format != HTMLFormat {
		t.Errorf("format %d, want %d", d.Format, HTMLFormat)
	}
	return d
}

// checkSelfContained: nothing in the page reaches the network.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)https?://`),
		regexp.MustCompile(`(?i)\b(src|href|action|srcset)\s*=`),
		regexp.MustCompile(`(?i)<link\b|<iframe\b|@import|url\(`),
		regexp.MustCompile(`(?i)\b(fetch|XMLHttpRequest|WebSocket|EventSource|importScripts)\s*\(`),
	} {
		if loc := re.FindStringIndex(page); loc != nil {
			t.Errorf("page is not self-contained: %q at byte %d: …%s…", page[loc[0]:loc[1]], loc[0],
				page[max(0, loc[0]-60):min(len(page), loc[1]+60)])
		}
	}
	if n := strings.Count(page, "<script"); n != 2 {
		t.Errorf("%d <script> elements, want 2 (data and code)", n)
	}
}

func TestHTMLCrossingFins(t *testing.T) {
	r := buildHTML(t, tracker.NamesRFC, kernelPcaps+"crossing-fins/capture.pcap")
	checkSelfContained(t, r.page)
	d := &r.data
	if d.Conns != 1 || len(d.List) != 1 || d.Packets != 11 {
		t.Fatalf("%d connections (%d listed), %d packets; want 1, 11", d.Conns, len(d.List), d.Packets)
	}
	c := d.conn(t, 1)
	if got := d.Hosts[num(t, c[fCH])] + fmt.Sprintf(":%d", num(t, c[fCP])); got != "192.0.2.2:45006" {
		t.Errorf("client %s, want 192.0.2.2:45006", got)
	}
	if cs, ss := d.Names[num(t, c[fCState])], d.Names[num(t, c[fSState])]; cs != "TIME_WAIT" || ss != "TIME_WAIT" {
		t.Errorf("end states %s/%s, want TIME_WAIT/TIME_WAIT", cs, ss)
	}
	pk := decodePackets(t, d, ints(t, c[fPackets]))
	var got []string
	for _, p := range pk {
		got = append(got, p.String())
	}
	// The textbook simultaneous close: both FINs cross, each side ACKs the other's.
	want := []string{
		"c>s [S] seq 0 len 0",
		"s>c [S.] seq 0 ack 1 len 0",
		"c>s [.] seq 1 ack 1 len 0",
		"c>s [P.] seq 1 ack 1 len 29",
		"s>c [.] seq 1 ack 30 len 0",
		"s>c [P.] seq 1 ack 30 len 44",
		"c>s [.] seq 30 ack 45 len 0",
		"c>s [F.] seq 30 ack 45 len 0",
		"s>c [F.] seq 45 ack 30 len 0",
		"c>s [.] seq 31 ack 46 len 0",
		"s>c [.] seq 46 ack 31 len 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("packets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if pk[0].Packet != 3 || pk[len(pk)-1].Packet != 14 {
		t.Errorf("packet numbers %d..%d, want 3..14 (as in the capture)", pk[0].Packet, pk[len(pk)-1].Packet)
	}
	// State changes: each on the packet that caused it.
	ch := ints(t, c[fChanges])
	var client, server []string
	for i := 0; i+1 < len(ch); i += 2 {
		side, st, idx := ch[i]>>4, ch[i]&15, ch[i+1]
		s := fmt.Sprintf("%s@%d", d.Names[st], idx)
		if side == 0 {
			client = append(client, s)
		} else {
			server = append(server, s)
		}
	}
	if g, w := strings.Join(client, " "), "SYN_SENT@0 ESTABLISHED@2 FIN_WAIT_1@7 CLOSING@9 TIME_WAIT@10"; g != w {
		t.Errorf("client changes %s, want %s", g, w)
	}
	if g, w := strings.Join(server, " "), "SYN_RECEIVED@1 ESTABLISHED@2 FIN_WAIT_1@8 FIN_WAIT_2@9 TIME_WAIT@10"; g != w {
		t.Errorf("server changes %s, want %s", g, w)
	}
	if init := num(t, c[fInit]); init != 0 {
		t.Errorf("initial states %d, want 0 (both CLOSED)", init)
	}
	if zs := d.Strings[num(t, c[fZeekState])]; zs != "SF" {
		t.Errorf("zeek conn_state %q, want SF", zs)
	}
}

func TestHTMLMixed40(t *testing.T) {
	r := buildHTML(t, tracker.NamesRFC, kernelPcaps+"mixed-40/capture.pcap")
	checkSelfContained(t, r.page)
	d := &r.data
	s := Summarize(r.conns)
	// The capture ends as the 3 SYNs to 8081 are retransmitted: in progress, not syn-unanswered.
	if d.Conns != 44 || len(d.List) != 44 || d.Packets != s.Packets || d.Problems != 20 {
		t.Errorf("%d connections (%d listed), %d packets, %d problems; want 44, %d, 20", d.Conns, len(d.List), d.Packets, d.Problems, s.Packets)
	}
	wantDiags := map[string]int{"refused": 5, "reset": 8, "half-closed": 7}
	for i, id := range d.Diags {
		if d.DiagCount[i] != wantDiags[id] {
			t.Errorf("diagnosis %s: %d, want %d", id, d.DiagCount[i], wantDiags[id])
		}
		if d.Problem[i] != tracker.Problem(id) {
			t.Errorf("diagnosis %s: problem %v", id, d.Problem[i])
		}
	}
	for st := tracker.Closed; st <= tracker.TimeWait; st++ {
		if d.States[0][st] != s.ClientState[st] || d.States[1][st] != s.ServerState[st] {
			t.Errorf("%s: %d/%d, want %d/%d", st, d.States[0][st], d.States[1][st], s.ClientState[st], s.ServerState[st])
		}
	}
	// Listed problems first, as the table.
	for i, c := range ProblemsFirst(r.conns) {
		var f []json.RawMessage
		json.Unmarshal(d.List[i], &f)
		if got := uint64(num(t, f[fID])); got != c.ID {
			t.Fatalf("position %d: #%d, want #%d (problems first)", i, got, c.ID)
		}
	}
	// Every connection's packets decode to its packet count, and its changes end in its end states.
	for _, c := range r.conns {
		f := d.conn(t, c.ID)
		pk := decodePackets(t, d, ints(t, f[fPackets]))
		nodup := 0
		for _, p := range pk {
			if p.Kind != "duplicate" {
				nodup++
			}
		}
		if uint64(nodup) != c.Packets {
			t.Errorf("#%d: %d packets decoded, connection has %d", c.ID, nodup, c.Packets)
		}
		state := [2]int64{num(t, f[fInit]) >> 4, num(t, f[fInit]) & 15}
		ch := ints(t, f[fChanges])
		for i := 0; i+1 < len(ch); i += 2 {
			if side := ch[i] >> 4; side < 2 {
				state[side] = ch[i] & 15
			}
		}
		if r := ints(t, f[fReasons]); len(r) != len(ch)/2 {
			t.Errorf("#%d: %d reasons for %d changes", c.ID, len(r), len(ch)/2)
		}
		if state[0] != int64(c.Client.State) || state[1] != int64(c.Server.State) {
			t.Errorf("#%d: changes end in %s/%s, end states %s/%s", c.ID, tracker.State(state[0]), tracker.State(state[1]), c.Client.State, c.Server.State)
		}
	}
	// A refused connection: the SYN and the server's RST.
	c13 := d.conn(t, 13)
	pk := decodePackets(t, d, ints(t, c13[fPackets]))
	if len(pk) != 2 || pk[0].String() != "c>s [S] seq 0 len 0" || pk[1].String() != "s>c [R.] seq 0 ack 1 len 0" {
		t.Errorf("#13 packets %v, want SYN then RST-ACK", pk)
	}
	if diags := ints(t, c13[fDiag]); len(diags) != 3 || d.Diags[diags[0]] != "refused" || diags[1] != int64(tracker.ServerSide) {
		t.Errorf("#13 diagnoses %v, want refused (server)", diags)
	}
	// IPv6 addresses are plain, without brackets (the page adds them).
	if !containsString(d.Hosts, "2001:db8:1::2") {
		t.Errorf("hosts %v: want 2001:db8:1::2", d.Hosts)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestHTMLNames(t *testing.T) {
	r := buildHTML(t, tracker.NamesLinux, kernelPcaps+"crossing-fins/capture.pcap")
	if r.data.Naming != "linux" || r.data.Names[tracker.Established] != "ESTAB" || r.data.Names[tracker.TimeWait] != "TIME-WAIT" ||
		r.data.Canonical[tracker.TimeWait] != "TIME_WAIT" {
		t.Errorf("naming %s, names %v, canonical %v", r.data.Naming, r.data.Names, r.data.Canonical)
	}
}

func TestHTMLEscapesAndEmpty(t *testing.T) {
	var b bytes.Buffer
	o := &Options{}
	if err := WriteHTML(&b, nil, nil, HTMLInfo{Files: []string{`</script><script>alert(1)</script>.pcap`}}, o); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Contains(page, "<script>alert") {
		t.Errorf("a file name reached the page unescaped")
	}
	d := parseHTMLData(t, page)
	if d.Conns != 0 || len(d.List) != 0 || d.Files[0] != `</script><script>alert(1)</script>.pcap` {
		t.Errorf("empty report: %d connections, files %q", d.Conns, d.Files)
	}
	checkSelfContained(t, page)
}

// seg builds a segment of a hand-made flow (for what no kernel capture holds: a flow longer
// than the ladder's cap).
func seg(n uint64, at time.Duration, fromClient bool, flags capture.Flags, seq, ack, plen uint32) *capture.Segment {
	c, s := netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("198.51.100.1:443")
	sg := &capture.Segment{Time: time.Unix(1_700_000_000, 0).Add(at), Src: c, Dst: s, Seq: capture.Seq(seq), Ack: capture.Seq(ack),
		Flags: flags, Window: 1000, PayloadLen: plen, Packet: n}
	if !fromClient {
		sg.Src, sg.Dst = s, c
	}
	return sg
}

func TestHTMLCapsLongFlows(t *testing.T) {
	var events int
	cfg := flowtable.Config{OnEvent: func(tracker.Event) { events++ }}
	col := NewHTMLCollector()
	col.Attach(&cfg)
	tr := flowtable.New(cfg)
	const isnC, isnS = 1000, 5000
	n := uint64(0)
	add := func(at time.Duration, fromClient bool, f capture.Flags, seq, ack, plen uint32) {
		n++
		tr.Add(seg(n, at, fromClient, f, seq, ack, plen))
	}
	add(0, true, capture.SYN, isnC, 0, 0)
	add(time.Millisecond, false, capture.SYN|capture.ACK, isnS, isnC+1, 0)
	add(2*time.Millisecond, true, capture.ACK, isnC+1, isnS+1, 0)
	const data = 6000
	for i := uint32(0); i < data; i++ {
		at := time.Duration(3+i) * time.Millisecond
		add(at, false, capture.ACK, isnS+1+i*100, isnC+1, 100)
		if i == 3000 { // a retransmission in the elided middle: still a timeline marker
			add(at+100*time.Microsecond+time.Millisecond, false, capture.ACK, isnS+1+i*100, isnC+1, 100)
		}
	}
	add(10*time.Second, false, capture.FIN|capture.ACK, isnS+1+data*100, isnC+1, 0)
	tr.Finish(time.Time{})
	if events == 0 {
		t.Errorf("the OnEvent hook set before Attach no longer runs")
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, tr.Conns(), col, HTMLInfo{}, &Options{}); err != nil {
		t.Fatal(err)
	}
	d := parseHTMLData(t, b.String())
	c := d.conn(t, 1)
	pk := decodePackets(t, &d, ints(t, c[fPackets]))
	total := int(n)
	if len(pk) != HTMLHeadPackets+HTMLTailPackets {
		t.Fatalf("%d packets kept, want %d", len(pk), HTMLHeadPackets+HTMLTailPackets)
	}
	el := ints(t, c[fElided])
	if el[0] != int64(total-len(pk)) || el[1] != HTMLHeadPackets {
		t.Errorf("elided %v, want %d not drawn after the first %d", el[:2], total-len(pk), HTMLHeadPackets)
	}
	retx := 0
	for i := 2; i+1 < len(el); i += 2 {
		if (d.Codes[el[i+1]]>>9)&7 == int64(reassembly.Retransmission) {
			retx++
		}
	}
	if retx != 1 {
		t.Errorf("%d retransmission markers among the elided packets, want 1", retx)
	}
	last := pk[len(pk)-1]
	if last.String() != fmt.Sprintf("s>c [F.] seq %d ack 1 len 0", 1+data*100) || last.Packet != int64(total) {
		t.Errorf("last packet kept: %v #%d, want the FIN, #%d", last, last.Packet, total)
	}
	if pk[HTMLHeadPackets].Packet != int64(total-HTMLTailPackets+1) {
		t.Errorf("tail starts at packet %d, want %d", pk[HTMLHeadPackets].Packet, total-HTMLTailPackets+1)
	}
	if pk[HTMLHeadPackets].T != int64(pk[HTMLHeadPackets].Packet-4-1)*1000+3000 {
		t.Errorf("tail time %d µs: not continuous with the head", pk[HTMLHeadPackets].T)
	}
}
