package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/report"
	"github.com/tcpstate/tcpstate/tracker"
)

// Live mode: capture, track and report at once. The tracker still reads no clock; this loop
// hands it wall-clock time once a second (Tick), so timers run out while the wire is silent,
// and writes out and forgets finished connections (Release), so memory follows the number of
// connections open at once, not how long the capture runs.

const (
	// refreshEvery is the tick: timers, finished connections, the view and the -w file.
	refreshEvery = time.Second
	// tickLag keeps ticks behind the packets still in flight: libpcap hands packets over up to
	// one read timeout after their kernel timestamp, and a tick must not evaluate a connection
	// at an instant before a packet it has yet to see.
	tickLag = 2*capture.DefaultReadTimeout + 50*time.Millisecond
	// finishedQuiet is how long a connection closed at both ends stays in the table before it
	// is written out and forgotten: a straggler (a segment that crossed a RST, a late
	// retransmission) still finds it.
	finishedQuiet = 10 * time.Second
	// maxOffenders bounds the --fail-on findings kept in memory over a long capture.
	maxOffenders = 1000
	// maxFinishedRows bounds the finished connections' rows kept for the final table (a row
	// is about a hundred bytes: ten megabytes at most).
	maxFinishedRows = 100000
)

// liveSource is what the live loop reads: a *capture.Live, or a stand-in in tests.
type liveSource interface {
	Poll(seg *capture.Segment) (got, open bool)
	Stop()
	Stats() capture.Stats
	Errs() []*capture.ReadError
	Flush() error
}

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
	if why := livePathWhy(o, lcfg); why == "" {
		return runFanout(o, lcfg, names, prof, failOn, stdout, stderr)
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

	cf, err := parseConnFilter(o.states, o.problems)
	if err != nil {
		return err
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
	return s.capture(src.Stop, func() error { return src.Close() })
}

// capture runs the session until the capture ends (Ctrl-C, SIGTERM, --duration, -c, an
// error); stop ends the capture from any goroutine, closeSrc releases it.
func (s *liveSession) capture(stop func(), closeSrc func() error) error {
	o, stderr := s.o, s.stderr

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
				s.tickDue.Store(true)
				continue
			}
			stops++
			if stops == 1 {
				stop()
				continue
			}
			// A second Ctrl-C while the final report is being written: give up on it.
			if s.view != nil {
				io.WriteString(s.term, report.LiveLeave)
			}
			fmt.Fprintln(stderr, "tcpstate: interrupted again: exiting without the final report")
			os.Exit(130)
		}
	}()
	if o.duration > 0 {
		t := time.AfterFunc(o.duration, stop)
		defer t.Stop()
	}
	err := s.run()
	if cerr := closeSrc(); cerr != nil && err == nil {
		err = &exitError{2, fmt.Sprintf("-w %s: %v", o.write, cerr)}
	}
	s.printStats(s.src.Stats())
	return err
}

// liveSession is one live capture being tracked and reported.
type liveSession struct {
	o      *options
	src    liveSource
	tr     *flowtable.Table
	ropts  *report.Options
	out    *bufio.Writer
	stderr io.Writer
	failOn map[string]bool

	// The refreshing view, when the output is a table on a terminal (nil: a stream).
	view   *report.LiveView
	term   *os.File
	status report.LiveStatus

	tickDue atomic.Bool // set once a second (and on SIGWINCH) by another goroutine

	fleet *fleet // --metrics, --snapshot-every (nil: neither)
	// shards: with AF_PACKET workers, one tracker per socket, each fed by its own goroutine
	// (workers.go); tr is then nil. Without, tr is the one tracker, fed by run's loop.
	shards []*liveShard
	outMu  sync.Mutex // events written by several workers

	finished     uint64
	finishedDiag map[string]int
	// The final table lists the connections that finished during the capture too (as -r on
	// the saved file does): their rows wait here, up to maxFinishedRows.
	finishedSeen atomic.Uint64 // finished, for other goroutines (tests)
	finTable     *report.TableWriter
	finListed    uint64
	finUnlisted  uint64
	cf           *connFilter // --state, --problems
	offenders    []string
	offenderN    int
	zeekHeader   bool
	writeErr     error
}

func newLiveSession(o *options, names tracker.Naming, prof tracker.Profile, failOn map[string]bool,
	src liveSource, stdout, stderr io.Writer) *liveSession {
	s := &liveSession{o: o, src: src, stderr: stderr, failOn: failOn, finishedDiag: map[string]int{},
		out:   bufio.NewWriterSize(stdout, 64<<10),
		ropts: &report.Options{Names: names, Verbose: o.verbose, Profile: prof, NoSummary: o.quiet}}
	if o.output == "table" {
		s.finTable = report.NewTableWriter(s.ropts)
	}
	if f, ok := stdout.(*os.File); ok && o.output == "table" && isTerminal(f) {
		s.term = f
		s.view = &report.LiveView{Color: os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"}
	}
	s.tr = flowtable.New(s.trackerConfig())
	s.status = report.LiveStatus{Interface: o.iface, Filter: o.filter}
	return s
}

// run captures until the source ends (Stop, -c, an error), then writes the final report.
func (s *liveSession) run() error {
	s.status.Started = time.Now()
	if s.fleet != nil {
		s.fleet.liveTick(s, s.status.Started.Add(-tickLag))
	}
	if s.view != nil {
		io.WriteString(s.out, report.LiveEnter)
		s.draw(s.status.Started)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(refreshEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.tickDue.Store(true)
			case <-done:
				return
			}
		}
	}()

	if s.shards != nil {
		return s.runShards()
	}
	var seg capture.Segment
	for {
		got, open := s.src.Poll(&seg)
		if got {
			s.tr.Add(&seg)
		}
		if !open {
			break
		}
		if s.tickDue.Swap(false) {
			s.tick(time.Now())
		}
		if s.writeErr != nil {
			s.src.Stop()
		}
	}
	return s.finish()
}

// tick runs the timers at wall-clock time, writes out finished connections and redraws.
func (s *liveSession) tick(now time.Time) {
	at := now.Add(-tickLag)
	s.lockAll()
	defer s.unlockAll()
	for _, tr := range s.trackers() {
		tr.Tick(at)
	}
	s.ropts.Now = at
	for _, tr := range s.trackers() {
		tr.Release(at, finishedQuiet, s.emitFinished)
	}
	if s.fleet != nil {
		s.fleet.liveTick(s, at)
	}
	if err := s.src.Flush(); err != nil && s.writeErr == nil {
		s.writeErr = fmt.Errorf("-w %s: %v", s.o.write, err)
	}
	if s.view != nil {
		s.draw(now)
	}
	s.flush()
}

// draw redraws the view, sized to the terminal as it is now.
func (s *liveSession) draw(now time.Time) {
	s.view.Width, s.view.Height = termSize(s.term)
	st := s.src.Stats()
	s.status.Now = now
	s.status.Packets, s.status.KernelDropped, s.status.IfaceDropped = st.Packets, st.KernelDropped, st.IfaceDropped
	s.status.WorkerDrops = s.workerDrops()
	s.status.Finished, s.status.FinishedDiagnoses = s.finished, s.finishedDiag
	if s.ropts.Now.IsZero() {
		s.ropts.Now = now
	}
	if err := s.view.Frame(s.out, s.cf.keepAll(s.conns()), &s.status, s.ropts); err != nil && s.writeErr == nil {
		s.writeErr = err
	}
	s.flush()
}

// emitFinished writes out a connection that finished during the capture, before it is forgotten.
func (s *liveSession) emitFinished(c *tracker.Conn) {
	s.finished++
	s.finishedSeen.Store(s.finished)
	if s.fleet != nil && s.fleet.coll != nil {
		s.fleet.coll.Finished(c)
	}
	for _, d := range c.Diagnoses {
		s.finishedDiag[d.ID]++
	}
	s.checkFailOn(c)
	if !s.cf.keep(c) {
		return
	}
	if s.finTable != nil {
		if s.finListed < maxFinishedRows {
			s.finTable.Add(c)
			s.finListed++
		} else {
			s.finUnlisted++
		}
		return
	}
	if s.view == nil {
		s.writeConns([]*tracker.Conn{c})
		s.flush()
	}
}

// writeConns writes connections in the stream's format (events are written as they happen).
func (s *liveSession) writeConns(conns []*tracker.Conn) {
	var err error
	switch s.o.output {
	case "json":
		err = report.WriteJSON(s.out, conns, s.ropts)
	case "zeek-json":
		err = report.WriteZeekJSON(s.out, conns)
	case "zeek":
		// conn.log's header once, then rows as connections finish, as Zeek writes it.
		var b bytes.Buffer
		report.WriteZeek(&b, conns)
		text := b.String()
		if s.zeekHeader {
			var rows []string
			for _, line := range strings.SplitAfter(text, "\n") {
				if line != "" && !strings.HasPrefix(line, "#") {
					rows = append(rows, line)
				}
			}
			text = strings.Join(rows, "")
		}
		s.zeekHeader = true
		_, err = io.WriteString(s.out, text)
	}
	if err != nil && s.writeErr == nil {
		s.writeErr = err
	}
}

func (s *liveSession) flush() {
	if err := s.out.Flush(); err != nil && s.writeErr == nil {
		s.writeErr = err
	}
}

func (s *liveSession) checkFailOn(c *tracker.Conn) {
	if s.failOn == nil {
		return
	}
	for _, d := range c.Diagnoses {
		if s.failOn[d.ID] || s.failOn["any"] && tracker.Problem(d.ID) {
			s.offenderN++
			if len(s.offenders) < maxOffenders {
				s.offenders = append(s.offenders, fmt.Sprintf("  #%d %s -> %s: %s (%s): %s", c.ID,
					report.AddrPort(c.Client.Addr), report.AddrPort(c.Server.Addr), d.ID, d.Side, report.DetailText(c, &d)))
			}
		}
	}
}

// finish evaluates what is still open as of now and writes the final report.
func (s *liveSession) finish() error {
	now := time.Now()
	for _, tr := range s.trackers() {
		if tr.Now.After(now) {
			now = tr.Now
		}
	}
	for _, tr := range s.trackers() {
		tr.Finish(now)
	}
	s.ropts.Now = now
	conns := s.conns()
	if s.view != nil {
		io.WriteString(s.out, report.LiveLeave)
	}
	switch s.o.output {
	case "table":
		// One table of every connection, those that finished during the capture included.
		tw := s.finTable
		for _, c := range s.cf.keepAll(conns) {
			tw.Add(c)
		}
		if s.finished > 0 {
			tw.Footers = append(tw.Footers, fmt.Sprintf("Finished during the capture: %d connections (listed above with the ones still open)", s.finished))
		}
		if s.finUnlisted > 0 {
			where := "save the capture with -w FILE to list them all afterwards with tcpstate -r FILE"
			if s.o.write != "" {
				where = fmt.Sprintf("their packets are in %s: tcpstate -r %s lists them all", s.o.write, s.o.write)
			}
			tw.Footers = append(tw.Footers, fmt.Sprintf("Not listed: %d more connections that finished during the capture (the table keeps %d); %s", s.finUnlisted, maxFinishedRows, where))
		}
		if s.cf != nil {
			tw.Footers = append(tw.Footers, "Shown: connections matching "+s.cf.flags(s.o))
		}
		if err := tw.Write(s.out); err != nil && s.writeErr == nil {
			s.writeErr = err
		}
	case "events":
	default:
		s.writeConns(s.cf.keepAll(conns))
	}
	s.flush()
	if err := s.src.Flush(); err != nil && s.writeErr == nil {
		s.writeErr = fmt.Errorf("-w %s: %v", s.o.write, err)
	}
	for _, c := range conns {
		s.checkFailOn(c)
	}
	var msgs []string
	if s.writeErr != nil {
		msgs = append(msgs, "writing output: "+s.writeErr.Error())
	}
	for _, e := range s.src.Errs() {
		msgs = append(msgs, e.Error())
	}
	if len(msgs) > 0 {
		return &exitError{2, strings.Join(msgs, "\ntcpstate: ")}
	}
	if s.offenderN > 0 {
		msg := fmt.Sprintf("--fail-on: %d finding(s):\n%s", s.offenderN, strings.Join(s.offenders, "\n"))
		if s.offenderN > len(s.offenders) {
			msg += fmt.Sprintf("\n  ... and %d more", s.offenderN-len(s.offenders))
		}
		return &exitError{1, msg}
	}
	return nil
}

// printStats writes tcpdump's closing lines, with the connection counts.
func (s *liveSession) printStats(st capture.Stats) {
	if s.o.quiet {
		return
	}
	perWorker := ""
	if d := s.workerDrops(); d != nil {
		perWorker = fmt.Sprintf(" (per AF_PACKET socket: %s)", report.JoinCounts(d))
	}
	fmt.Fprintf(s.stderr, "tcpstate: %d packets captured (%d TCP), %d dropped by kernel%s, %d dropped by interface; %d connections (%d finished during the capture), states as of %s\n",
		st.Packets, st.TCP, st.KernelDropped, perWorker, st.IfaceDropped, s.connections(), s.finished,
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
