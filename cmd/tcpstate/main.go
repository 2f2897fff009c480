// Command tcpstate reconstructs, from packets alone, the TCP socket state of each endpoint of
// every connection in a capture: the ss/netstat view of both hosts, seen from the wire.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/report"
	"github.com/tcpstate/tcpstate/tracker"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usageHead = `tcpstate: the TCP state of each endpoint of every connection, from packets alone.

Examples:
  tcpstate -r capture.pcap                        ss-like table, problems first
  tcpstate -r capture.pcap 'port 443'             only what a tcpdump filter selects
  tcpstate -r capture.pcap -o json                one JSON object per connection
  tcpstate -r capture.pcap -o events              every state change and the packet behind it
  tcpstate -r capture.pcap --names linux          states as Linux 'ss' prints them
  tcpstate -r capture.pcap --at 12.5              states as they stood 12.5 s into the capture
  tcpstate -r capture.pcap --fail-on half-closed,reset    exit 1 if any connection has one
  tcpstate -r good.pcap --expect-init expect.yaml  write expectations from a known-good capture
  tcpstate -r new.pcap --expect expect.yaml       exit 1, with a readable report, on mismatch
  tcpstate -r a.pcap -r b.pcapng.gz               several files, merged in time order
  sudo tcpstate -i eth0 'port 443'                live view, refreshed every second (Ctrl-C: final table)
  sudo tcpstate -i any -o json -w cap.pcap        stream finished connections, save the packets

Usage:
  tcpstate -r FILE [-r FILE ...] [flags] [BPF filter expression]
  tcpstate -i IFACE [flags] [BPF filter expression]

Flags:
`

const usageTail = `
States: LISTEN SYN_SENT SYN_RECEIVED ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 CLOSE_WAIT CLOSING
        LAST_ACK TIME_WAIT CLOSED, as of the last packet (or --at), after timers.
        A '?' after a state in the table means inferred: the wire did not show it directly
        (-v says on what evidence).
Diagnoses: syn-unanswered refused handshake-incomplete half-closed fin-unacknowledged reset
        rst-ignored zero-window midstream port-reused capture-gap idle middlebox-reset
        retransmission-timeout keepalive-timeout
Exit codes: 0 success; 1 a --fail-on/--expect check failed; 2 usage error or unreadable input
        (a damaged file: everything before the damage is still reported).
`

type options struct {
	files    []string
	iface    string
	write    string
	snaplen  int
	output   string
	html     string
	names    string
	osName   string
	at       string
	failOn   string
	expect   string
	expInit  string
	quiet    bool
	verbose  bool
	version  bool
	maxFlows int
	shard    string
	filter   string

	// Live capture (-i).
	noPromisc  bool
	listIfaces bool
	count      int
	duration   time.Duration
	user       string
	noDecap    bool
}

// exitError carries an exit code with its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErr(format string, a ...any) error {
	return &exitError{2, fmt.Sprintf(format, a...) + "\nRun 'tcpstate -h' for examples."}
}

func main() {
	err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "tcpstate: "+ee.msg)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "tcpstate: "+err.Error())
	os.Exit(2)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := pflag.NewFlagSet("tcpstate", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringArrayVarP(&o.files, "read", "r", nil, "read packets from `FILE` (pcap or pcapng, .gz ok, - for stdin); repeatable")
	fs.StringVarP(&o.iface, "interface", "i", "", "capture live on `IFACE`")
	fs.StringVarP(&o.write, "write", "w", "", "with -i, also save the captured packets to `FILE`")
	fs.IntVarP(&o.snaplen, "snaplen", "s", 262144, "with -i, bytes to capture per packet")
	fs.BoolVarP(&o.noPromisc, "no-promiscuous-mode", "p", false, "with -i, do not put the interface into promiscuous mode")
	fs.IntVarP(&o.count, "count", "c", 0, "with -i, stop after `COUNT` packets")
	fs.DurationVar(&o.duration, "duration", 0, "with -i, stop after `DURATION` (e.g. 30s, 10m)")
	fs.StringVarP(&o.user, "user", "Z", "", "with -i, drop root privileges to `USER` once the interface is open (tcpdump -Z)")
	fs.BoolVarP(&o.listIfaces, "list-interfaces", "D", false, "list the interfaces -i can capture on, and exit")
	fs.StringVarP(&o.output, "output", "o", "", "output format: table, json, events, zeek, zeek-json (default table on a terminal, json otherwise)")
	fs.StringVar(&o.html, "html", "", "also write a self-contained visual report to `FILE`")
	fs.StringVar(&o.names, "names", "rfc", "state names as printed by: rfc, linux (ss), windows or bsd (netstat)")
	fs.StringVar(&o.osName, "os", "linux", "timer profile that ages states: linux, windows or bsd")
	fs.StringVar(&o.at, "at", "", "report states as they stood at `TIME` (RFC 3339, or seconds into the capture)")
	fs.StringVar(&o.failOn, "fail-on", "", "exit 1 if any connection has one of these diagnoses (`LIST`, comma separated, or 'any')")
	fs.StringVar(&o.expect, "expect", "", "check connections against the expectations in `FILE` (YAML or JSON); exit 1 on mismatch")
	fs.StringVar(&o.expInit, "expect-init", "", "write an expectation `FILE` describing this (known good) capture, to edit and commit")
	fs.IntVar(&o.maxFlows, "max-flows", 0, "cap the connection table at `N` entries (0: no cap)")
	fs.StringVar(&o.shard, "shard", "", "analyse only shard `I/N` of the 4-tuple hash space")
	fs.BoolVar(&o.noDecap, "no-decap", false, "do not track TCP inside tunnels (IP-in-IP, GRE, VXLAN, Geneve, Teredo, GTP-U)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no summary or progress, just the output")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "explain each state: since when, timers, evidence for inferred states")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	help := fs.BoolP("help", "h", false, "show this help")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
		fmt.Fprint(stderr, usageTail)
	}
	if err := fs.Parse(args); err != nil {
		return nil, usageErr("%v", err)
	}
	if *help {
		fs.SetOutput(os.Stdout)
		fmt.Fprint(os.Stdout, usageHead)
		fs.PrintDefaults()
		fmt.Fprint(os.Stdout, usageTail)
		return nil, &exitError{0, ""}
	}
	o.filter = strings.Join(fs.Args(), " ")
	return o, nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintln(stdout, "tcpstate", version)
		return nil
	}
	if o.listIfaces {
		return listInterfaces(stdout)
	}
	names, err := tracker.ParseNaming(o.names)
	if err != nil {
		return usageErr("%v", err)
	}
	prof, err := tracker.LookupProfile(o.osName)
	if err != nil {
		return usageErr("%v", err)
	}
	if o.output == "" {
		o.output = "json"
		if f, ok := stdout.(*os.File); ok && isTerminal(f) {
			o.output = "table"
		}
	}
	switch o.output {
	case "table", "json", "events", "zeek", "zeek-json":
	default:
		return usageErr("unknown output format %q: use table, json, events, zeek or zeek-json", o.output)
	}
	failOn, err := parseFailOn(o.failOn)
	if err != nil {
		return err
	}
	switch {
	case o.iface != "" && len(o.files) > 0:
		return usageErr("give either -r FILE or -i IFACE, not both")
	case o.iface == "" && (o.noPromisc || o.count != 0 || o.duration != 0 || o.user != ""):
		return usageErr("-p, -c, --duration and --user apply to live capture: add -i IFACE")
	case o.iface != "":
		return runLive(o, names, prof, failOn, stdout, stderr)
	case len(o.files) == 0:
		return usageErr("nothing to read: give a capture with -r FILE (e.g. tcpstate -r capture.pcap)")
	}
	return runFile(o, names, prof, failOn, stdout, stderr)
}

// fileIdleTimeout: reading files, a connection silent this long (in capture time) is reported
// as it stands and forgotten, so that connections whose end the capture never shows do not
// hold memory for the rest of a long capture.
const fileIdleTimeout = time.Hour

// runFile is `tcpstate -r FILE...`. Connections stream: each is written out and forgotten once
// it is finished (closed at both ends past TIME_WAIT, or replaced), in order of first packet,
// so memory follows the connections open at once. Only --html keeps every connection (and its
// packets) for the end.
func runFile(o *options, names tracker.Naming, prof tracker.Profile, failOn map[string]bool, stdout, stderr io.Writer) error {
	shardI, shardN, err := parseShard(o.shard)
	if err != nil {
		return err
	}
	switch {
	case o.maxFlows < 0:
		return usageErr("--max-flows %d: give a positive number of connections (0: no cap)", o.maxFlows)
	case o.maxFlows > 0 && o.html != "":
		return usageErr("--max-flows drops connections before they end, and --html draws every connection whole: use one or the other")
	}
	var expectations []*report.Expectation
	if o.expect != "" {
		data, err := os.ReadFile(o.expect)
		if err != nil {
			return usageErr("--expect: %v", err)
		}
		if expectations, err = report.ParseExpectations(o.expect, data); err != nil {
			return usageErr("--expect: %v", err)
		}
	}
	var at time.Time
	atRelative := -1.0
	if o.at != "" {
		if at, atRelative, err = parseAt(o.at); err != nil {
			return err
		}
	}

	src, err := capture.OpenFiles(o.files, capture.Config{Filter: o.filter, NoDecap: o.noDecap})
	if err != nil {
		return &exitError{2, err.Error()}
	}
	defer src.Close()

	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	ropts := &report.Options{Names: names, Verbose: o.verbose, Profile: prof}
	cfg := tracker.Config{Profile: prof}
	if o.output == "events" {
		cfg.OnEvent = func(e tracker.Event) { report.WriteEvent(out, &e, ropts) }
	}
	// A progress bar on stderr, for a human waiting on a terminal.
	var progress func(capture.Stats)
	if f, ok := stderr.(*os.File); ok && !o.quiet && isTerminal(f) {
		bar := report.NewProgress(stderr, inputSize(o.files), time.Now())
		progress = func(st capture.Stats) { bar.Update(st, time.Now()) }
		defer bar.Done()
	}
	var html *report.HTMLCollector
	var stream *report.Stream
	var finished []*tracker.Conn // what --expect, --expect-init and --html look at
	var offenders []string
	var ts tracker.Stats
	if o.html != "" {
		// The HTML report draws every connection with its packets: nothing is forgotten.
		html = report.NewHTMLCollector()
		html.Attach(&cfg)
		tr := tracker.New(cfg)
		var seg capture.Segment
		var first, now time.Time
		var n uint64
		for src.Next(&seg) {
			if n++; n%(1<<16) == 0 && progress != nil {
				progress(src.Stats())
			}
			if first.IsZero() {
				first = seg.Time
				if atRelative >= 0 {
					at = first.Add(time.Duration(atRelative * float64(time.Second)))
				}
			}
			if !at.IsZero() && seg.Time.After(at) {
				break
			}
			if seg.Time.After(now) {
				now = seg.Time // the capture's clock, whichever shard the segment is for
			}
			if shardN > 0 && tracker.ShardOf(tracker.FlowHash(seg.Src, seg.Dst), shardN) != shardI {
				continue
			}
			tr.Add(&seg)
		}
		if !at.IsZero() {
			now = at
		}
		ropts.Now = now
		tr.Finish(now)
		finished = tr.Conns()
		for _, c := range finished {
			if failOn != nil {
				offenders = appendOffenders(offenders, c, failOn)
			}
		}
		ts = tr.Stats()
	} else {
		if os.Getenv("GOGC") == "" {
			// A streaming run keeps a large, mostly pointer-free live heap (packed connections)
			// that is cheap to mark: collect more often rather than let garbage double it.
			debug.SetGCPercent(40)
		}
		stream = report.NewStream(out, o.output, ropts)
		keep := expectations != nil || o.expInit != ""
		rc := tracker.RunConfig{Config: cfg, At: at, AtOffset: time.Duration(atRelative * float64(time.Second)),
			AtIsOffset: atRelative >= 0, ShardI: shardI, ShardN: shardN,
			Stream:  tracker.StreamConfig{MaxFlows: o.maxFlows, IdleTimeout: fileIdleTimeout},
			Workers: runtime.GOMAXPROCS(0), Progress: progress,
			AtEnd: func(now time.Time) { ropts.Now = now }}
		rs := tracker.Run(src, rc, func(c *tracker.Conn) {
			stream.Conn(c)
			if failOn != nil {
				offenders = appendOffenders(offenders, c, failOn)
			}
			if keep {
				finished = append(finished, c.Summary())
			}
		})
		ts = rs.Stats
	}
	st := src.Stats()
	if stream != nil {
		if tw := stream.Table(); tw != nil && o.maxFlows > 0 {
			tw.Footers = append(tw.Footers, fmt.Sprintf("Table cap (--max-flows %d): at most %d connections tracked at once", o.maxFlows, ts.Peak))
		}
		err = stream.Close()
	} else {
		switch o.output {
		case "table":
			err = report.WriteTable(out, finished, ropts)
		case "json":
			err = report.WriteJSON(out, finished, ropts)
		case "zeek":
			err = report.WriteZeek(out, finished)
		case "zeek-json":
			err = report.WriteZeekJSON(out, finished)
		}
	}
	if err != nil {
		return &exitError{2, "writing output: " + err.Error()}
	}
	out.Flush()
	if html != nil {
		info := report.HTMLInfo{Files: o.files, Filter: o.filter, Version: version}
		if err := report.WriteHTMLFile(o.html, finished, html, info, ropts); err != nil {
			return &exitError{2, err.Error()}
		}
	}

	if o.verbose && !o.quiet {
		fmt.Fprintf(stderr, "tcpstate: %d packets read, %d TCP, %d not TCP, %d filtered out, %d duplicates ignored\n",
			st.Packets, st.TCP, st.NonTCP, st.Filtered, ts.Duplicates)
		if o.maxFlows > 0 || ts.Evicted > 0 || ts.TimedOut > 0 {
			fmt.Fprintf(stderr, "tcpstate: %d connections, at most %d tracked at once; %d evicted (--max-flows %d), %d timed out (silent for %s)\n",
				ts.Connections, ts.Peak, ts.Evicted, o.maxFlows, ts.TimedOut, fileIdleTimeout)
		}
	}
	if errs := src.Errs(); len(errs) > 0 {
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		return &exitError{2, strings.Join(msgs, "\ntcpstate: ")}
	}
	if o.expInit != "" {
		if err := writeExpectInit(o.expInit, strings.Join(o.files, ", "), finished); err != nil {
			return &exitError{2, err.Error()}
		}
		if !o.quiet {
			fmt.Fprintf(stderr, "tcpstate: wrote expectations for %d connection(s) to %s; edit it, then check with --expect %s\n", len(finished), o.expInit, o.expInit)
		}
	}
	var failures []string
	if len(offenders) > 0 {
		failures = append(failures, fmt.Sprintf("--fail-on: %d finding(s):\n%s", len(offenders), strings.Join(offenders, "\n")))
	}
	if expectations != nil {
		var rep strings.Builder
		if n := report.CheckExpectations(&rep, o.expect, expectations, finished); n > 0 {
			failures = append(failures, fmt.Sprintf("--expect: %d of %d expectation(s) failed:\n%s", n, len(expectations), strings.TrimRight(rep.String(), "\n")))
		}
	}
	if len(failures) > 0 {
		return &exitError{1, strings.Join(failures, "\n")}
	}
	return nil
}

// inputSize is the total size of the files, as stored (0 when one is standard input).
func inputSize(files []string) int64 {
	var n int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if f == "-" || err != nil || !fi.Mode().IsRegular() {
			return 0
		}
		n += fi.Size()
	}
	return n
}

// parseShard reads --shard I/N (0 <= I < N); N is 0 without it.
func parseShard(s string) (i, n int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, usageErr("--shard %q: give I/N with 0 <= I < N, e.g. --shard 0/4 ... --shard 3/4 for four disjoint runs", s)
	}
	return i, n, nil
}

func writeExpectInit(path, source string, conns []*tracker.Conn) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--expect-init: %v", err)
	}
	if err := report.WriteExpectations(f, source, conns); err != nil {
		f.Close()
		return fmt.Errorf("--expect-init: %v", err)
	}
	return f.Close()
}

// parseAt reads --at: RFC 3339 (absolute) or a number of seconds into the capture.
func parseAt(s string) (time.Time, float64, error) {
	if secs, err := strconv.ParseFloat(s, 64); err == nil && secs >= 0 {
		return time.Time{}, secs, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, -1, nil
		}
	}
	return time.Time{}, -1, usageErr("--at %q: give RFC 3339 (2026-11-24T18:47:47Z) or seconds into the capture (12.5)", s)
}

func parseFailOn(s string) (map[string]bool, error) {
	if s == "" {
		return nil, nil
	}
	set := map[string]bool{}
	for _, id := range strings.Split(s, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if id != "any" && !knownDiagnosis(id) {
			return nil, usageErr("--fail-on: unknown diagnosis %q; known: any, %s", id, strings.Join(tracker.AllDiagnoses, ", "))
		}
		set[id] = true
	}
	return set, nil
}

func knownDiagnosis(id string) bool {
	for _, d := range tracker.AllDiagnoses {
		if d == id {
			return true
		}
	}
	return false
}

// appendOffenders adds c's findings of the --fail-on set.
func appendOffenders(offenders []string, c *tracker.Conn, set map[string]bool) []string {
	for _, d := range c.Diagnoses {
		if set["any"] || set[d.ID] {
			offenders = append(offenders, fmt.Sprintf("  #%d %s -> %s: %s (%s): %s", c.ID,
				report.AddrPort(c.Client.Addr), report.AddrPort(c.Server.Addr), d.ID, d.Side, d.Detail))
		}
	}
	return offenders
}
