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

	runner "github.com/tcpstate/tcpstate/run"

	"github.com/spf13/pflag"
	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/osfp"
	"github.com/tcpstate/tcpstate/report"
	"github.com/tcpstate/tcpstate/tracker"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usageHead = `tcpstate: the TCP state of each endpoint of every connection, from packets alone.

Examples:
  tcpstate -r capture.pcap                        ss-like table, problems first
  tcpstate -r capture.pcap | grep CLOSE_WAIT      the table through a pipe too (JSON only with -o json)
  tcpstate -r capture.pcap 'port 443'             only what a tcpdump filter selects
  tcpstate -nn -r capture.pcap -c 1000 -F f.txt   tcpdump habits: -n/-nn (no-ops), -c COUNT, -F FILE
  tcpstate -r capture.pcap --state close-wait     only connections with an endpoint in CLOSE_WAIT
  tcpstate -r capture.pcap --problems -q          only connections with a problem, no summary
  tcpstate -r capture.pcap -o json                one JSON object per connection
  tcpstate -r capture.pcap -o events              every state change and the packet behind it
  tcpstate -r capture.pcap --names linux          states as Linux 'ss' prints them
  tcpstate -r capture.pcap --names auto           each endpoint as its own OS prints it
  tcpstate -r capture.pcap --os 10.1.0.0/16=windows,server=linux   you know your hosts
  tcpstate -r capture.pcap --at 1m30s             states as they stood 90 s in (or 12.5, or 18:47:47 UTC)
  tcpstate -r in.pcap -w out.pcap 'port 443'      write the packets the filter selected (tcpdump -r -w)
  tcpstate -r in.pcap -w seen.pcapng --annotate   Wireshark shows each state change as a packet comment
  tcpstate -r capture.pcap --fail-on half-closed,reset    exit 1 if any connection has one
  tcpstate -r good.pcap --expect-init expect.yaml  write expectations from a known-good capture
  tcpstate -r new.pcap --expect expect.yaml       exit 1, with a readable report, on mismatch
  tcpstate -r a.pcap -r b.pcapng.gz               several files, merged in time order
  sudo tcpstate -i eth0 'port 443'                live view, refreshed every second (Ctrl-C: final table)
  sudo tcpstate -i any -o json -w cap.pcap        stream finished connections, save the packets
  sudo tcpstate -i eth0 -o json --metrics :9917 --metrics-ports 443,5432
                                                  Prometheus metrics at http://HOST:9917/metrics
  tcpstate -r day.pcap -o json --snapshot-every 10m   also each open connection every 10 minutes

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
Diagnoses (problems): syn-unanswered refused handshake-incomplete half-closed fin-unacknowledged
        reset rst-ignored zero-window middlebox-reset retransmission-timeout keepalive-timeout.
        A silence is a problem only once the retransmission it should have caused was due
        (1 s after a first SYN, then backed off): before, in progress.
Notes, in [brackets], not problems (--fail-on any ignores them): midstream capture-gap (about
        the capture: what the tap did not see), port-reused idle. A capture of one direction
        only (e.g. 'dst port 80') is said once; its states are marked inferred.
Exit codes: 0 success; 1 a --fail-on/--expect check failed; 2 usage error or unreadable input
        (a damaged file: everything before the damage is still reported, and --fail-on,
        --expect, --expect-init and --html still run on it).
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
	osPolicy osfp.Policy // --os read (osSetting)
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

	// The first hour (issue 16): tcpdump and ss habits.
	filterFile string // -F
	snapSet    bool   // -s given
	annotate   bool
	states     string // --state
	problems   bool   // --problems

	// Live capture (-i).
	noPromisc  bool
	listIfaces bool
	count      int
	duration   time.Duration
	user       string
	noDecap    bool
	workers    int
	libpcap    bool

	// Fleet use (metrics.go): a Prometheus endpoint, snapshots of open connections.
	metricsAddr   string
	metricsPorts  string
	snapshotEvery time.Duration
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
	var noNames bool
	fs := pflag.NewFlagSet("tcpstate", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringArrayVarP(&o.files, "read", "r", nil, "read packets from `FILE` (pcap or pcapng, .gz ok, - for stdin); repeatable")
	fs.StringVarP(&o.iface, "interface", "i", "", "capture live on `IFACE`")
	fs.StringVarP(&o.write, "write", "w", "", "save the packets to `FILE`: with -i what was captured, with -r what the filter selected (tcpdump -r in -w out 'filter')")
	fs.BoolVar(&o.annotate, "annotate", false, "with -w, write pcapng with a comment on each packet that changed a state (Wireshark: frame.comment)")
	fs.IntVarP(&o.snaplen, "snaplen", "s", 262144, "with -i, bytes to capture per packet")
	fs.BoolVarP(&o.noPromisc, "no-promiscuous-mode", "p", false, "with -i, do not put the interface into promiscuous mode")
	fs.IntVarP(&o.count, "count", "c", 0, "stop after `COUNT` packets (those the filter selects, TCP or not), as tcpdump -c")
	fs.StringVarP(&o.filterFile, "filter-file", "F", "", "read the filter expression from `FILE` (tcpdump -F; '#' starts a comment)")
	fs.StringVar(&o.states, "state", "", "only connections with an endpoint in one of these states (`LIST`, comma separated, any naming: CLOSE_WAIT, close-wait, CLOSE-WAIT)")
	fs.BoolVar(&o.problems, "problems", false, "only connections with a problem (a diagnosis about the connection, not the capture)")
	fs.BoolVarP(&noNames, "numeric", "n", false, "accepted for tcpdump's habit (-n, -nn); tcpstate never resolves names")
	fs.DurationVar(&o.duration, "duration", 0, "with -i, stop after `DURATION` (e.g. 30s, 10m)")
	fs.IntVar(&o.workers, "workers", 0, "with -i on Linux, capture with `N` AF_PACKET sockets in a fanout group, each feeding a tracker of its own (default: one per core); -i any, -w, -c, vlan/mpls filters, non-Ethernet interfaces and --libpcap capture through libpcap, with one reader")
	fs.BoolVar(&o.libpcap, "libpcap", false, "with -i, capture through libpcap (one reader) rather than AF_PACKET sockets")
	fs.StringVarP(&o.user, "user", "Z", "", "with -i, drop root privileges to `USER` once the interface is open (tcpdump -Z)")
	fs.BoolVarP(&o.listIfaces, "list-interfaces", "D", false, "list the interfaces -i can capture on, and exit")
	fs.StringVarP(&o.output, "output", "o", "table", "output format: table, json, events, zeek, zeek-json (table also through a pipe or into a file)")
	fs.StringVar(&o.html, "html", "", "also write a self-contained visual report to `FILE`")
	fs.StringVar(&o.names, "names", "rfc", "state names as printed by: rfc, linux (ss), windows or bsd (netstat), or auto (each endpoint as its own OS prints it)")
	fs.StringVar(&o.osName, "os", "auto", "OS whose timers age each endpoint's states: auto (inferred per endpoint), linux, windows, bsd or macos, plus `RULES` like 192.0.2.0/24=windows,server=linux")
	fs.StringVar(&o.at, "at", "", "report states as they stood at `TIME`: seconds or a duration into the capture (12.5, 1m30s), a time of day on its date in UTC (18:47:47), or RFC 3339")
	fs.StringVar(&o.failOn, "fail-on", "", "exit 1 if any connection has one of these diagnoses (`LIST`, comma separated, or 'any': every problem, not the notes about the capture)")
	fs.StringVar(&o.expect, "expect", "", "check connections against the expectations in `FILE` (YAML or JSON); exit 1 on mismatch")
	fs.StringVar(&o.expInit, "expect-init", "", "write an expectation `FILE` describing this (known good) capture, to edit and commit")
	fs.IntVar(&o.maxFlows, "max-flows", 0, "cap the connection table at `N` entries (0: no cap)")
	fs.StringVar(&o.shard, "shard", "", "analyse only shard `I/N` of the 4-tuple hash space")
	addFleetFlags(fs, o)
	fs.BoolVar(&o.noDecap, "no-decap", false, "do not track TCP inside tunnels (IP-in-IP, GRE, VXLAN, Geneve, Teredo, GTP-U)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no summary lines or progress, just the connections")
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
	o.snapSet = fs.Changed("snaplen")
	if err := o.readFilterFile(); err != nil {
		return nil, err
	}
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
	prof, err := osSetting(o)
	if err != nil {
		return usageErr("%v", err)
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
	case o.iface == "" && (o.noPromisc || o.duration != 0 || o.user != "" || o.workers != 0 || o.libpcap):
		return usageErr("-p, --duration, --user, --workers and --libpcap apply to live capture: add -i IFACE")
	case o.iface == "" && o.snapSet:
		return usageErr("-s applies to live capture: a file's packets were cut to its snapshot length when it was written (see: capinfos -l FILE); drop -s, or capture again with -i IFACE -s N")
	case o.count < 0:
		return usageErr("-c %d: give a positive packet count", o.count)
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
	if err := checkWriteFile(o); err != nil {
		return err
	}
	cf, err := parseConnFilter(o.states, o.problems)
	if err != nil {
		return err
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
	var atSpecified atSpec
	if o.at != "" {
		if atSpecified, err = parseAtSpec(o.at); err != nil {
			return err
		}
	}

	ropts := &report.Options{Names: names, Verbose: o.verbose, Profile: prof, NoSummary: o.quiet}
	fl, err := startFleet(o, ropts, stderr)
	if err != nil {
		return err
	}
	defer fl.close()
	ccfg := capture.Config{Filter: o.filter, NoDecap: o.noDecap, Count: uint64(o.count)}
	var closeSave func() error
	if o.write != "" && !o.annotate {
		saver, c, err := openSaver(o)
		if err != nil {
			return err
		}
		closeSave = c
		ccfg.Tap = func(p *capture.Tapped) { saver.Write(p, nil) } // an error stops writing; Close reports it
	}
	opened, err := capture.OpenFiles(o.files, ccfg)
	if err != nil {
		if closeSave != nil {
			closeSave()
		}
		return &exitError{2, err.Error()}
	}
	defer opened.Close()
	var src capture.Source = opened
	var span *spanSource
	var at time.Time
	if rs, ok := opened.(capture.RefSource); ok && o.at != "" { // files always are one
		span = newSpanSource(rs, atSpecified)
		at = span.resolve()
		src = span
	}

	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	cfg := flowtable.Config{Profile: prof, OS: o.osPolicy}
	// With --state or --problems, a connection's events wait until it is known to be shown.
	var evBuf map[uint64][]tracker.Event
	if o.output == "events" {
		if cf == nil {
			cfg.OnEvent = func(e tracker.Event) { report.WriteEvent(out, &e, ropts) }
		} else {
			evBuf = map[uint64][]tracker.Event{}
			cfg.OnEvent = func(e tracker.Event) { evBuf[e.ConnID] = append(evBuf[e.ConnID], e) }
		}
	}
	emitEvents := func(c *tracker.Conn) {
		if evBuf == nil {
			return
		}
		if cf.keep(c) {
			for i := range evBuf[c.ID] {
				report.WriteEvent(out, &evBuf[c.ID][i], ropts)
			}
		}
		delete(evBuf, c.ID)
	}
	var ann *annotations
	if o.annotate {
		ann = newAnnotations(names)
		ann.attach(&cfg)
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
	var ts flowtable.Stats
	var total, shown uint64 // connections, and those --state/--problems let through
	var oneSided uint64     // connections the capture shows one direction of
	if o.html != "" {
		// The HTML report draws every connection with its packets: nothing is forgotten.
		html = report.NewHTMLCollector()
		html.Attach(&cfg)
		rc := runner.Config{Config: cfg, At: at, ShardI: shardI, ShardN: shardN, Keep: true, Progress: progress,
			AtEnd: func(now time.Time) { ropts.Now = now }}
		rs := runner.Run(src, rc, func(c *tracker.Conn) {
			finished = append(finished, c)
			total++
			if _, ok := c.OneSided(); ok {
				oneSided++
			}
			if cf.keep(c) {
				shown++
			}
			emitEvents(c)
			if failOn != nil {
				offenders = appendOffenders(offenders, c, failOn)
			}
		})
		ts = rs.Stats
	} else {
		if os.Getenv("GOGC") == "" {
			// A streaming run keeps a large, mostly pointer-free live heap (packed connections)
			// that is cheap to mark: collect more often rather than let garbage double it.
			debug.SetGCPercent(40)
		}
		stream = report.NewStream(out, o.output, ropts)
		keep := expectations != nil || o.expInit != ""
		rc := runner.Config{Config: cfg, At: at, ShardI: shardI, ShardN: shardN,
			Stream:  flowtable.StreamConfig{MaxFlows: o.maxFlows, IdleTimeout: fileIdleTimeout},
			Workers: runtime.GOMAXPROCS(0), Progress: progress,
			AtEnd: func(now time.Time) { ropts.Now = now }}
		if fl != nil {
			fl.fileRun(&rc, stream, src.Stats)
		}
		rs := runner.Run(src, rc, func(c *tracker.Conn) {
			total++
			if _, ok := c.OneSided(); ok {
				oneSided++
			}
			if cf.keep(c) {
				shown++
				stream.Conn(c)
			}
			if fl != nil && fl.coll != nil {
				fl.coll.Finished(c)
			}
			emitEvents(c)
			if failOn != nil {
				offenders = appendOffenders(offenders, c, failOn)
			}
			if keep {
				finished = append(finished, c.Summary())
			}
		})
		ts = rs.Stats
	}
	if span != nil {
		if err := span.check(o.at, prof, stderr, o.quiet); err != nil {
			if closeSave != nil {
				closeSave()
			}
			return err
		}
	}
	st := src.Stats()
	empty := emptyMessage(o, st, total)
	if empty == "" && cf != nil && shown == 0 {
		empty = cf.none(o, int(total))
	}
	var notes []string // said once, under the table (on stderr with the other formats)
	if oneSided > 0 {
		notes = append(notes, oneSidedNote(oneSided, total))
	}
	if stream != nil {
		if tw := stream.Table(); tw != nil {
			tw.Footers = append(tw.Footers, notes...)
			if o.maxFlows > 0 {
				tw.Footers = append(tw.Footers, fmt.Sprintf("Table cap (--max-flows %d): at most %d connections tracked at once", o.maxFlows, ts.Peak))
			}
			if cf != nil {
				tw.Footers = append(tw.Footers, cf.describe(o, int(shown), int(total)))
			}
			tw.Empty = empty
		}
		err = stream.Close()
	} else {
		shownConns := cf.keepAll(finished)
		switch o.output {
		case "table":
			tw := report.NewTableWriter(ropts)
			for _, c := range shownConns {
				tw.Add(c)
			}
			if cf != nil {
				tw.Footers = append(tw.Footers, cf.describe(o, int(shown), int(total)))
			}
			tw.Footers = append(tw.Footers, notes...)
			tw.Empty = empty
			err = tw.Write(out)
		case "json":
			err = report.WriteJSON(out, shownConns, ropts)
		case "zeek":
			err = report.WriteZeek(out, shownConns)
		case "zeek-json":
			err = report.WriteZeekJSON(out, shownConns)
		}
	}
	if err != nil {
		return &exitError{2, "writing output: " + err.Error()}
	}
	out.Flush()
	if o.output != "table" && !o.quiet {
		if empty != "" {
			fmt.Fprintln(stderr, "tcpstate: "+empty)
		}
		for _, n := range notes {
			fmt.Fprintln(stderr, "tcpstate: "+n)
		}
	}
	if closeSave != nil {
		if err := closeSave(); err != nil {
			return err
		}
	}
	if ann != nil {
		if err := ann.write(o, ccfg); err != nil {
			return err
		}
	}
	if html != nil {
		info := report.HTMLInfo{Files: o.files, Filter: o.filter, Version: version}
		if err := report.WriteHTMLFile(o.html, cf.keepAll(finished), html, info, ropts); err != nil {
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
	// A damaged file stops reading, not the checks: they run on every connection read before
	// the damage and say what they found; the exit code stays 2 (the input was not whole).
	var readErrs []string
	for _, e := range src.Errs() {
		readErrs = append(readErrs, e.Error())
	}
	if o.expInit != "" {
		if err := writeExpectInit(o.expInit, strings.Join(o.files, ", "), finished); err != nil {
			return &exitError{2, err.Error()}
		}
		if !o.quiet {
			partial := ""
			if len(readErrs) > 0 {
				partial = " (from the part read before the damage below: check it before committing)"
			}
			fmt.Fprintf(stderr, "tcpstate: wrote expectations for %d connection(s) to %s%s; edit it, then check with --expect %s\n", len(finished), o.expInit, partial, o.expInit)
		}
	}
	var failures []string
	if len(offenders) > 0 {
		failures = append(failures, fmt.Sprintf("--fail-on: %d finding(s):\n%s", len(offenders), strings.Join(offenders, "\n")))
	} else if failOn != nil && len(readErrs) > 0 {
		failures = append(failures, "--fail-on: no finding in the connections read before the damage")
	}
	if expectations != nil {
		var rep strings.Builder
		if n := report.CheckExpectations(&rep, o.expect, expectations, finished); n > 0 {
			failures = append(failures, fmt.Sprintf("--expect: %d of %d expectation(s) failed:\n%s", n, len(expectations), strings.TrimRight(rep.String(), "\n")))
		} else if len(readErrs) > 0 {
			failures = append(failures, fmt.Sprintf("--expect: all %d expectation(s) held for the connections read before the damage", len(expectations)))
		}
	}
	if len(readErrs) > 0 {
		return &exitError{2, strings.Join(append(failures, readErrs...), "\ntcpstate: ")}
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
		if set[d.ID] || set["any"] && tracker.Problem(d.ID) { // any: every problem, not the notes about the capture
			offenders = append(offenders, fmt.Sprintf("  #%d %s -> %s: %s (%s): %s", c.ID,
				report.AddrPort(c.Client.Addr), report.AddrPort(c.Server.Addr), d.ID, d.Side, report.DetailText(c, &d)))
		}
	}
	return offenders
}
