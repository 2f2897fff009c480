package report

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/internal/benchgen"
	"github.com/tcpstate/tcpstate/tracker"
)

// The end-to-end tests open the report in headless Chromium and use it as a user does: click a
// lane, click a bar, type a search. They skip, saying why, where Chromium is missing.

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/report.png with a screenshot of the mixed-40 report")

// writeReport builds the report for a kernel capture into a temporary file.
func writeReport(t *testing.T, names tracker.Naming, scenario string) (string, *htmlReport) {
	t.Helper()
	r := buildHTML(t, names, kernelPcaps+scenario+"/capture.pcap")
	path := filepath.Join(t.TempDir(), scenario+".html")
	if err := os.WriteFile(path, []byte(r.page), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, r
}

func checkNoPageProblems(t *testing.T, b *browser) {
	t.Helper()
	if p := b.pageProblems(); len(p) > 0 {
		t.Errorf("the page had problems:\n%s", strings.Join(p, "\n"))
	}
}

// ladder is what the ladder diagram shows.
type ladder struct {
	Title   string
	Hash    string
	Packets []struct{ Flags, Dir, Kind, Label string }
	States  []struct{ Side, State, Text string }
	Note    string
}

const readLadder = `({
	Title: document.getElementById('detail-title').textContent,
	Hash: location.hash,
	Note: document.getElementById('ladder-note').textContent,
	Packets: [...document.querySelectorAll('#ladder g.pkt')].map(g => ({Flags: g.dataset.flags, Dir: g.dataset.dir,
		Kind: g.dataset.kind, Label: g.querySelector('text.lab').textContent})),
	States: [...document.querySelectorAll('#ladder g.st')].map(g => ({Side: g.dataset.side, State: g.dataset.state,
		Text: g.querySelector('text').textContent})),
})`

func (l *ladder) states(side string) string {
	var s []string
	for _, x := range l.States {
		if x.Side == side {
			s = append(s, x.State)
		}
	}
	return strings.Join(s, " ")
}

func TestBrowserLadderCrossingFins(t *testing.T) {
	path, _ := writeReport(t, tracker.NamesRFC, "crossing-fins")
	b := startBrowser(t)
	b.viewport(1400, 1200)
	b.open(path, "")
	var n int
	b.eval("tcpstateReport.view().length", &n)
	if n != 1 {
		t.Fatalf("%d lanes, want 1", n)
	}
	var empty bool
	b.eval("document.getElementById('detail-body').hidden", &empty)
	if !empty {
		t.Errorf("a connection is selected before any click")
	}
	// Click the lane, as a user.
	var at struct{ X, Y float64 }
	b.eval("tcpstateReport.laneCenter(1)", &at)
	b.click(at.X, at.Y)
	b.waitFor("!document.getElementById('detail-body').hidden", 10*time.Second)
	var l ladder
	b.eval(readLadder, &l)
	if l.Hash != "#conn=1" || !strings.Contains(l.Title, "192.0.2.2:45006") {
		t.Errorf("after the click: hash %q, title %q", l.Hash, l.Title)
	}
	var flags []string
	for _, p := range l.Packets {
		flags = append(flags, p.Dir+" "+p.Flags)
	}
	want := []string{"c2s SYN", "s2c SYN, ACK", "c2s ACK", "c2s PSH, ACK", "s2c ACK", "s2c PSH, ACK", "c2s ACK",
		"c2s FIN, ACK", "s2c FIN, ACK", "c2s ACK", "s2c ACK"}
	if strings.Join(flags, "|") != strings.Join(want, "|") {
		t.Errorf("ladder arrows:\n%s\nwant:\n%s", strings.Join(flags, "\n"), strings.Join(want, "\n"))
	}
	if len(l.Packets) == len(want) {
		for i, lab := range map[int]string{0: "SYN  seq=0 len=0", 1: "SYN, ACK  seq=0 ack=1 len=0", 3: "PSH, ACK  seq=1 ack=1 len=29",
			7: "FIN, ACK  seq=30 ack=45 len=0", 8: "FIN, ACK  seq=45 ack=30 len=0", 10: "ACK  seq=46 ack=31 len=0"} {
			if l.Packets[i].Label != lab {
				t.Errorf("arrow %d: %q, want %q", i, l.Packets[i].Label, lab)
			}
		}
	}
	if g, w := l.states("client"), "SYN_SENT ESTABLISHED FIN_WAIT_1 CLOSING TIME_WAIT"; g != w {
		t.Errorf("client state labels %q, want %q", g, w)
	}
	if g, w := l.states("server"), "SYN_RECEIVED ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 TIME_WAIT"; g != w {
		t.Errorf("server state labels %q, want %q", g, w)
	}
	checkNoPageProblems(t, b)
	b.mouseAway()
	b.screenshot(filepath.Join(artifactDir(t), "crossing-fins.png"))
}

func TestBrowserFiltersAndSearch(t *testing.T) {
	path, r := writeReport(t, tracker.NamesRFC, "mixed-40")
	b := startBrowser(t)
	b.viewport(1400, 1000)
	b.open(path, "")
	view := func() []int {
		var v []int
		b.eval("tcpstateReport.view()", &v)
		return v
	}
	count := func(pred func(c *tracker.Conn) bool) int {
		n := 0
		for _, c := range r.conns {
			if pred(c) {
				n++
			}
		}
		return n
	}
	if n := len(view()); n != 44 {
		t.Fatalf("%d lanes, want 44", n)
	}
	// Problems first, as the table.
	if v := view(); v[0] != int(ProblemsFirst(r.conns)[0].ID) {
		t.Errorf("first lane #%d, want #%d", v[0], ProblemsFirst(r.conns)[0].ID)
	}

	// Click the half-closed bar: only those connections remain; click again: all.
	idx := -1
	for i, id := range r.data.Diags {
		if id == "half-closed" {
			idx = i
		}
	}
	bar := fmt.Sprintf(`#diag-bars .bar[data-diag="%d"]`, idx)
	b.clickElement(bar)
	v := view()
	if len(v) != 7 {
		t.Errorf("half-closed filter: %d lanes, want 7", len(v))
	}
	for _, id := range v {
		if !r.conns[id-1].HasDiagnosis("half-closed") {
			t.Errorf("half-closed filter shows #%d, which is not half-closed", id)
		}
	}
	b.clickElement(bar)
	if n := len(view()); n != 44 {
		t.Errorf("after clearing the filter: %d lanes, want 44", n)
	}

	// Client end state TIME_WAIT; the chip clears it.
	b.clickElement(fmt.Sprintf(`#state-bars .bar[data-side="0"][data-state="%d"]`, tracker.TimeWait))
	if n, w := len(view()), count(func(c *tracker.Conn) bool { return c.Client.State == tracker.TimeWait }); n != w {
		t.Errorf("client TIME_WAIT filter: %d lanes, want %d", n, w)
	}
	b.clickElement("#chips .chip")
	if n := len(view()); n != 44 {
		t.Errorf("after removing the chip: %d lanes, want 44", n)
	}

	// Typing a search: a port, then an address.
	b.clickElement("#search")
	b.typeText("8080")
	want8080 := count(func(c *tracker.Conn) bool { return c.Server.Addr.Port() == 8080 || c.Client.Addr.Port() == 8080 })
	b.waitFor(fmt.Sprintf("tcpstateReport.view().length === %d", want8080), 10*time.Second)
	for _, q := range []struct {
		q    string
		pred func(c *tracker.Conn) bool
	}{
		{"2001:db8:1::2", func(c *tracker.Conn) bool { return c.Client.Addr.Addr().String() == "2001:db8:1::2" }},
		{"close_wait", func(c *tracker.Conn) bool {
			return c.Client.State == tracker.CloseWait || c.Server.State == tracker.CloseWait
		}},
		{"refused :81", func(c *tracker.Conn) bool { return c.HasDiagnosis("refused") }},
		{"#13", func(c *tracker.Conn) bool { return c.ID == 13 }},
	} {
		var n int
		b.eval(fmt.Sprintf("tcpstateReport.search(%q)", q.q), &n)
		if w := count(q.pred); n != w || w == 0 {
			t.Errorf("search %q: %d lanes, want %d", q.q, n, w)
		}
	}
	b.eval(`tcpstateReport.search('')`, nil)

	// A link to a connection (#conn=8: half-closed, with a retransmitted FIN) draws its ladder.
	b.eval(`location.hash = '#conn=8'`, nil)
	b.waitFor("document.getElementById('detail-title').textContent.startsWith('#8 ')", 10*time.Second)
	var l ladder
	b.eval(readLadder, &l)
	c8 := r.conns[7]
	if len(l.Packets) != int(c8.Packets+c8.Duplicates) {
		t.Errorf("#8: %d arrows, want %d", len(l.Packets), c8.Packets+c8.Duplicates)
	}
	retx := 0
	for _, p := range l.Packets {
		if p.Kind == "retransmission" {
			retx++
		}
	}
	if retx == 0 {
		t.Errorf("#8: no retransmission drawn; arrows %v", l.Packets)
	}
	if !strings.HasSuffix(l.states("client"), "CLOSE_WAIT") || !strings.HasSuffix(l.states("server"), "FIN_WAIT_2") {
		t.Errorf("#8 states: client %q, server %q; want ending CLOSE_WAIT and FIN_WAIT_2", l.states("client"), l.states("server"))
	}
	checkNoPageProblems(t, b)

	// The screenshot for the README: a half-closed connection selected.
	b.mouseAway()
	b.screenshot(filepath.Join(artifactDir(t), "mixed-40.png"))
	if *updateDocs {
		b.screenshot("../docs/report.png")
	}
}

func TestBrowserNames(t *testing.T) {
	path, _ := writeReport(t, tracker.NamesLinux, "crossing-fins")
	b := startBrowser(t)
	b.open(path, "conn=1")
	var got struct{ Bars, Ladder string }
	b.eval(`({Bars: document.getElementById('state-bars').textContent,
		Ladder: [...document.querySelectorAll('#ladder g.st text')].map(t => t.textContent).join(' ')})`, &got)
	if !strings.Contains(got.Bars, "TIME-WAIT") || strings.Contains(got.Bars, "TIME_WAIT") {
		t.Errorf("state bars with --names linux: %q", got.Bars)
	}
	if !strings.Contains(got.Ladder, "SYN-SENT") || !strings.Contains(got.Ladder, "ESTAB") || !strings.Contains(got.Ladder, "FIN-WAIT-1") {
		t.Errorf("ladder with --names linux: %q", got.Ladder)
	}
	checkNoPageProblems(t, b)
}

// scrollProbe scrolls the timeline frame by frame and reports frame intervals and draw times.
const scrollProbe = `(async () => {
	const lanes = document.getElementById('lanes'), T = tcpstateReport.timings;
	const raf = () => new Promise(r => requestAnimationFrame(r));
	async function run(n, pos) {
		T.draws = 0; T.draw_total_ms = 0; T.draw_max_ms = 0;
		const frames = [];
		let prev = await raf();
		for (let i = 0; i < n; i++) {
			lanes.scrollTop = pos(i);
			const now = await raf();
			frames.push(now - prev);
			prev = now;
		}
		await raf();
		frames.sort((a, b) => a - b);
		return {frames: n, median_ms: frames[n >> 1], p95_ms: frames[Math.floor(n * 0.95)], max_ms: frames[n - 1],
			draws: T.draws, draw_avg_ms: T.draw_total_ms / Math.max(1, T.draws), draw_max_ms: T.draw_max_ms};
	}
	const max = lanes.scrollHeight - lanes.clientHeight;
	const wheel = await run(300, (i) => Math.min(max, (i + 1) * 66));
	const jumps = await run(120, (i) => Math.round(max * ((i * 37) % 120) / 119));
	const nav = performance.getEntriesByType('navigation')[0] || {};
	const paint = {};
	for (const p of performance.getEntriesByType('paint')) paint[p.name] = p.startTime;
	return {wheel, jumps, lanes: tcpstateReport.view().length, scroll_height_px: lanes.scrollHeight,
		parse_ms: T.parse_ms, first_render_ms: T.first_render_ms, dom_interactive_ms: nav.domInteractive,
		load_event_end_ms: nav.loadEventEnd, first_contentful_paint_ms: paint['first-contentful-paint'],
		js_heap_mb: performance.memory ? performance.memory.usedJSHeapSize / 1e6 : null};
})()`

// measurePage opens a report, measures opening and scrolling it, and returns the numbers.
func measurePage(t *testing.T, b *browser, path string, selectID uint64, search string) map[string]any {
	t.Helper()
	b.viewport(1400, 1000)
	openTime := b.open(path, "")
	var m map[string]any
	b.eval(scrollProbe, &m)
	m["open_wall_ms"] = float64(openTime.Microseconds()) / 1000
	var sel struct{ Ladder, Search, Lanes float64 }
	b.eval(fmt.Sprintf(`(() => { tcpstateReport.select(%d); const l = tcpstateReport.timings.ladder_ms;
		const t0 = performance.now(); const n = tcpstateReport.search(%q); return {Ladder: l, Search: performance.now() - t0, Lanes: n}; })()`,
		selectID, search), &sel)
	m["ladder_ms"], m["search_ms"], m["search_lanes"] = sel.Ladder, sel.Search, sel.Lanes
	checkNoPageProblems(t, b)
	return m
}

// TestHTMLScale builds the report for workload A of internal/benchgen (short HTTPS
// connections; TCPSTATE_HTML_SCALE connections, default 2,000: set it to 100000 for the full
// measurement), and measures in Chromium how long the page takes to open and how smoothly the
// timeline scrolls. It reports the numbers; it asserts no timing.
func TestHTMLScale(t *testing.T) {
	n := 2000
	if s := os.Getenv("TCPSTATE_HTML_SCALE"); s != "" {
		fmt.Sscan(s, &n)
	}
	if testing.Short() && n > 2000 {
		t.Skip("-short")
	}
	res := buildScaleReport(t, n)
	b := startBrowser(t)
	m := measurePage(t, b, res.path, res.selectID, "10.1.0.7")
	m["conns"], m["packets"], m["page_bytes"], m["page_mb"] = res.conns, res.packets, res.bytes, float64(res.bytes)/1e6
	m["go_report_ms"], m["go_heap_mb"] = res.reportMS, res.heapMB
	out, _ := json.MarshalIndent(m, "", "  ")
	t.Logf("report for %d connections, %d packets:\n%s", res.conns, res.packets, out)
	dir := artifactDir(t)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("html-scale-%d.json", n)), out, 0o644)
	b.eval(`tcpstateReport.search('')`, nil)
	b.screenshot(filepath.Join(dir, fmt.Sprintf("html-scale-%d.png", n)))
}

type scaleReport struct {
	path             string
	conns            int
	packets          uint64
	bytes            int64
	selectID         uint64
	reportMS, heapMB float64
}

// buildScaleReport generates workload A with n connections and writes its report as
// `tcpstate -r a.pcap --html` would.
func buildScaleReport(t *testing.T, n int) scaleReport {
	t.Helper()
	dir := t.TempDir()
	pcap := filepath.Join(dir, "a.pcap")
	if _, err := benchgen.GenerateFile(pcap, benchgen.Config{Workload: "A", Seed: 1, Conns: n, Snaplen: 96}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	src, err := capture.OpenFiles([]string{pcap}, capture.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg := flowtable.Config{}
	col := NewHTMLCollector()
	col.Attach(&cfg)
	tr := flowtable.New(cfg)
	var seg capture.Segment
	for src.Next(&seg) {
		tr.Add(&seg)
	}
	tr.Finish(time.Time{})
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	path := filepath.Join(dir, "a.html")
	conns := tr.Conns()
	if err := WriteHTMLFile(path, conns, col, HTMLInfo{Files: []string{"workload-a.pcap"}, Version: "test"}, &Options{Now: tr.Now}); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(conns)
	return scaleReport{path: path, conns: s.Conns, packets: s.Packets, bytes: fi.Size(), selectID: uint64(len(conns) / 2),
		reportMS: float64(elapsed.Microseconds()) / 1000, heapMB: float64(ms.HeapAlloc) / 1e6}
}

// TestBrowserEveryCapture opens the report of every bundled capture (kernel recordings and
// the public corpus: midstream, port reuse, zero windows, injected RSTs, IPv6, pcapng) and
// draws every connection's ladder: no script error, and one arrow per packet kept.
func TestBrowserEveryCapture(t *testing.T) {
	var files []string
	for _, pat := range []string{kernelPcaps + "*/capture.pcap", "../testdata/pcaps/public/*.pcap*"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("only %d bundled captures found", len(files))
	}
	b := startBrowser(t)
	dir := t.TempDir()
	for i, f := range files {
		r, _ := buildHTMLErrs(t, tracker.NamesRFC, f) // a damaged file is reported up to the damage
		path := filepath.Join(dir, fmt.Sprintf("%d.html", i))
		if err := os.WriteFile(path, []byte(r.page), 0o644); err != nil {
			t.Fatal(err)
		}
		b.open(path, "")
		var got []struct{ ID, Arrows, States int }
		b.eval(`tcpstateReport.view().map(id => { tcpstateReport.select(id);
			return {ID: id, Arrows: document.querySelectorAll('#ladder g.pkt').length, States: document.querySelectorAll('#ladder g.st').length}; })`, &got)
		if len(got) != len(r.conns) {
			t.Errorf("%s: %d lanes, %d connections", f, len(got), len(r.conns))
		}
		for _, g := range got {
			c := r.conns[g.ID-1]
			want := min(int(c.Packets+c.Duplicates), HTMLHeadPackets+HTMLTailPackets)
			if g.Arrows != want {
				t.Errorf("%s #%d: %d arrows, want %d", f, g.ID, g.Arrows, want)
			}
		}
		if p := b.pageProblems(); len(p) > 0 {
			t.Fatalf("%s: the page had problems:\n%s", f, strings.Join(p, "\n"))
		}
	}
}
