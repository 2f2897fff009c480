package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/report"
	runner "github.com/tcpstate/tcpstate/run"
	"github.com/tcpstate/tcpstate/tracker"
)

// Live mode: `tcpstate -i IFACE`. The driver (run.Live) captures, runs the timers on the wall
// clock and hands finished connections and its ticks to the sinks built here (sinks.go): the
// live view on a terminal, else the output stream; the metrics; --fail-on.

const (
	// maxOffenders bounds the --fail-on findings kept in memory over a long capture.
	maxOffenders = 1000
	// maxFinishedRows bounds the finished connections' rows kept for the final table (a row
	// is about a hundred bytes: ten megabytes at most).
	maxFinishedRows = 100000
)

// runLive is `tcpstate -i IFACE`.
func runLive(o *options, names tracker.Naming, prof tracker.Profile, failOn map[string]bool, stdout, stderr io.Writer) error {
	switch {
	case o.at != "":
		return usageErr("--at does not apply to live capture; save with -w FILE and run tcpstate -r FILE --at %s", o.at)
	case o.expect != "" || o.expInit != "":
		return usageErr("--expect and --expect-init do not apply to live capture; save with -w FILE, then check it with tcpstate -r FILE --expect ...")
	case o.html != "" || o.maxFlows != 0 || o.shard != "":
		return usageErr("--html, --max-flows and --shard apply to files: save the capture with -w FILE, then run tcpstate -r FILE with them")
	case o.write == "-":
		return usageErr("-w -: standard output carries the report; give a file name to save packets to")
	case o.annotate:
		return usageErr("--annotate applies to -r: save the capture with -w FILE, then run tcpstate -r FILE -w annotated.pcapng --annotate")
	case o.count < 0:
		return usageErr("-c %d: give a positive packet count", o.count)
	case o.duration < 0:
		return usageErr("--duration %v: give a positive duration (e.g. 30s, 5m)", o.duration)
	case o.snaplen < 0 || o.snaplen > 262144:
		return usageErr("-s %d: give a snapshot length from 1 to 262144 (0 means 262144)", o.snaplen)
	}
	lcfg := capture.LiveConfig{Interface: o.iface, Snaplen: o.snaplen, Promisc: !o.noPromisc,
		Filter: o.filter, Count: uint64(o.count), NoDecap: o.noDecap}
	if o.workers < 0 {
		return usageErr("--workers %d: give a number of capture sockets (1 or more; 0: one per core)", o.workers)
	}
	cf, err := parseConnFilter(o.states, o.problems)
	if err != nil {
		return err
	}
	if why := livePathWhy(o, lcfg); why == "" {
		return runFanout(o, lcfg, names, prof, failOn, cf, stdout, stderr)
	} else if o.workers > 1 && !o.quiet {
		fmt.Fprintf(stderr, "tcpstate: --workers %d ignored: capturing through libpcap with one reader (%s)\n", o.workers, why)
	}
	src, err := capture.OpenLive(lcfg)
	if err != nil {
		return &exitError{2, err.Error()}
	}
	defer src.Close()
	if o.user != "" {
		if err := dropPrivileges(o.user, stderr); err != nil {
			return &exitError{2, err.Error()}
		}
	}
	// The -w file is created after dropping privileges, as tcpdump -Z does: it belongs to USER.
	if o.write != "" {
		f, err := os.Create(o.write)
		if err != nil {
			return &exitError{2, fmt.Sprintf("-w %s: %v", o.write, err)}
		}
		defer f.Close()
		if err := src.SaveTo(f); err != nil {
			return &exitError{2, fmt.Sprintf("-w %s: %v", o.write, err)}
		}
	}

	s := newLiveSession(o, names, prof, failOn, src, stdout, stderr)
	s.cf = cf
	if s.fleet, err = startFleet(o, s.ropts, stderr); err != nil {
		return err
	}
	defer s.fleet.close()
	if s.view == nil && !o.quiet {
		fmt.Fprintf(stderr, "tcpstate: listening on %s (libpcap), link-type %s (%s), snapshot length %d bytes\n",
			src.Interface(), src.LinkName(), src.LinkDescription(), src.Snaplen())
	}
	return s.capture(src.Close)
}

// capture runs the session until the capture ends (Ctrl-C, SIGTERM, --duration, -c, an
// error); closeSrc releases the source.
func (s *liveSession) capture(closeSrc func() error) error {
	o, stderr := s.o, s.stderr
	l := s.prepare()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGWINCH)
	defer func() {
		signal.Stop(sigs)
		close(sigs)
	}()
	go func() {
		stops := 0
		for sig := range sigs {
			if sig == syscall.SIGWINCH {
				l.Poke()
				continue
			}
			stops++
			if stops == 1 {
				l.Stop()
				continue
			}
			// A second Ctrl-C while the final report is being written: give up on it.
			if s.view != nil {
				io.WriteString(s.view.term, report.LiveLeave)
			}
			fmt.Fprintln(stderr, "tcpstate: interrupted again: exiting without the final report")
			os.Exit(130)
		}
	}()
	if o.duration > 0 {
		t := time.AfterFunc(o.duration, l.Stop)
		defer t.Stop()
	}
	err := s.run()
	if cerr := closeSrc(); cerr != nil && err == nil {
		err = &exitError{2, fmt.Sprintf("-w %s: %v", o.write, cerr)}
	}
	s.printStats(l.Stats())
	return err
}

// liveSession is one live capture: its options, its sinks and its driver.
type liveSession struct {
	o      *options
	ropts  *report.Options
	stdout io.Writer
	stderr io.Writer
	failOn map[string]bool
	cf     *connFilter // --state, --problems
	fleet  *fleet      // --metrics, --snapshot-every (nil: neither)
	// view: the refreshing view, when the output is a table on a terminal (nil: a stream).
	view *viewSink

	// driver makes the run's driver (one libpcap reader, or AF_PACKET sockets).
	driver func(runner.LiveConfig, runner.Sink) *runner.Live
	// Set by prepare.
	live   *runner.Live
	sinks  runner.Sinks
	stream *streamSink
	fail   *failOnSink
}

func newLiveSession(o *options, names tracker.Naming, prof tracker.Profile, failOn map[string]bool,
	src runner.LiveSource, stdout, stderr io.Writer) *liveSession {
	s := &liveSession{o: o, stdout: stdout, stderr: stderr, failOn: failOn,
		ropts: &report.Options{Names: names, Verbose: o.verbose, Profile: prof, NoSummary: o.quiet}}
	if f, ok := stdout.(*os.File); ok && o.output == "table" && isTerminal(f) {
		s.view = &viewSink{term: f, out: bufio.NewWriterSize(stdout, 64<<10), ropts: s.ropts,
			view:   report.LiveView{Color: os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"},
			status: report.LiveStatus{Interface: o.iface, Filter: o.filter, FinishedDiagnoses: map[string]int{}}}
	}
	s.driver = func(cfg runner.LiveConfig, sink runner.Sink) *runner.Live { return runner.NewLive(cfg, src, sink) }
	return s
}

// prepare builds the sinks and the driver (once).
func (s *liveSession) prepare() *runner.Live {
	if s.live != nil {
		return s.live
	}
	o := s.o
	cfg := runner.LiveConfig{Config: flowtable.Config{Profile: s.ropts.Profile, OS: o.osPolicy},
		OnClock: func(at time.Time) { s.ropts.Now = at }}
	if s.view != nil {
		s.view.cf = s.cf
		s.sinks = append(s.sinks, s.view)
	}
	if o.output == "events" {
		ev := &liveEvents{out: bufio.NewWriterSize(s.stdout, 64<<10), ropts: s.ropts}
		cfg.OnEvent = ev.event
		s.sinks = append(s.sinks, ev)
	}
	s.stream = &streamSink{stream: report.NewStream(s.stdout, o.output, s.ropts), cf: s.cf}
	if o.output == "table" {
		// One table of every connection, those that finished during the capture included.
		s.stream.maxRows, s.stream.footers = maxFinishedRows, s.tableFooters
	}
	if s.fleet != nil {
		s.fleet.stream, s.fleet.live = s.stream.stream, true
		s.sinks = append(s.sinks, s.fleet)
	}
	s.sinks = append(s.sinks, s.stream)
	if s.failOn != nil {
		s.fail = &failOnSink{set: s.failOn, limit: maxOffenders}
		s.sinks = append(s.sinks, s.fail)
	}
	s.live = s.driver(cfg, s.sinks)
	return s.live
}

// tableFooters are the final table's last lines.
func (s *liveSession) tableFooters(tw *report.TableWriter) {
	if n := s.live.Finished(); n > 0 {
		tw.Footers = append(tw.Footers, fmt.Sprintf("Finished during the capture: %d connections (listed above with the ones still open)", n))
	}
	if s.stream.unlisted > 0 {
		where := "save the capture with -w FILE to list them all afterwards with tcpstate -r FILE"
		if s.o.write != "" {
			where = fmt.Sprintf("their packets are in %s: tcpstate -r %s lists them all", s.o.write, s.o.write)
		}
		tw.Footers = append(tw.Footers, fmt.Sprintf("Not listed: %d more connections that finished during the capture (the table keeps %d); %s", s.stream.unlisted, maxFinishedRows, where))
	}
	if s.cf != nil {
		tw.Footers = append(tw.Footers, "Shown: connections matching "+s.cf.flags(s.o))
	}
}

// run captures until the source ends (Stop, -c, an error), writes the final report and says
// how the run went (exit codes).
func (s *liveSession) run() error {
	flushErr := s.prepare().Run()
	var msgs []string
	werr := s.sinks.Err()
	if werr == nil && flushErr != nil {
		werr = fmt.Errorf("-w %s: %v", s.o.write, flushErr)
	}
	if werr != nil {
		msgs = append(msgs, "writing output: "+werr.Error())
	}
	for _, e := range s.live.Errs() {
		msgs = append(msgs, e.Error())
	}
	if len(msgs) > 0 {
		return &exitError{2, strings.Join(msgs, "\ntcpstate: ")}
	}
	if msg := s.fail.failure(); msg != "" {
		return &exitError{1, msg}
	}
	return nil
}

// printStats writes tcpdump's closing lines, with the connection counts.
func (s *liveSession) printStats(st runner.LiveStats) {
	if s.o.quiet {
		return
	}
	perWorker := ""
	if st.PerSocket != nil {
		d := make([]uint64, len(st.PerSocket))
		for i, p := range st.PerSocket {
			d[i] = p.KernelDropped
		}
		perWorker = fmt.Sprintf(" (per AF_PACKET socket: %s)", report.JoinCounts(d))
	}
	fmt.Fprintf(s.stderr, "tcpstate: %d packets captured (%d TCP), %d dropped by kernel%s, %d dropped by interface; %d connections (%d finished during the capture), states as of %s\n",
		st.Packets, st.TCP, st.KernelDropped, perWorker, st.IfaceDropped, st.Connections, st.Finished,
		s.ropts.Now.UTC().Format(report.TimeFormat))
}

// termSize asks the terminal for its size (TIOCGWINSZ); 80×24 when it will not say.
func termSize(f *os.File) (width, height int) {
	var ws struct{ Row, Col, X, Y uint16 }
	rc, err := f.SyscallConn()
	if err != nil {
		return 80, 24
	}
	var errno syscall.Errno
	rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(syscall.TIOCGWINSZ), uintptr(unsafe.Pointer(&ws)))
	})
	if errno != 0 || ws.Col == 0 || ws.Row == 0 {
		return 80, 24
	}
	return int(ws.Col), int(ws.Row)
}

// dropPrivileges becomes user (and its groups) for good, as tcpdump -Z does once the capture
// is open: the open capture keeps working, nothing else root could do remains.
func dropPrivileges(name string, stderr io.Writer) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("--user %s: %v", name, err)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintf(stderr, "tcpstate: --user %s: not running as root, nothing to drop\n", name)
		return nil
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("--user %s: not a numeric uid/gid (%s/%s)", name, u.Uid, u.Gid)
	}
	groups := []int{gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil && n != gid {
				groups = append(groups, n)
			}
		}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("--user %s: setgroups: %v", name, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("--user %s: setgid %d: %v", name, gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("--user %s: setuid %d: %v", name, uid, err)
	}
	return nil
}

// listInterfaces is -D: the capture devices, numbered as tcpdump -D numbers them.
func listInterfaces(w io.Writer) error {
	ifs, err := capture.Interfaces()
	if err != nil {
		return &exitError{2, err.Error()}
	}
	if len(ifs) == 0 {
		return &exitError{2, "no interfaces to capture on were found (libpcap lists none)"}
	}
	for i, d := range ifs {
		line := fmt.Sprintf("%d.%s", i+1, d.Name)
		if d.Description != "" {
			line += " (" + d.Description + ")"
		}
		if len(d.Flags) > 0 {
			line += " [" + strings.Join(d.Flags, ", ") + "]"
		}
		fmt.Fprintln(w, line)
	}
	return nil
}
