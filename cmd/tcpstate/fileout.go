package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/reassembly"
	"github.com/tcpstate/tcpstate/report"
	"github.com/tcpstate/tcpstate/tracker"
)

// -w with -r: the packets the filter selected, as tcpdump -r in -w out 'filter' writes them;
// with --annotate, as pcapng with tcpstate's verdict on each packet that changed a state.

// checkWriteFile refuses what would lose data: -w onto one of the inputs, -w - (stdout carries
// the report), --annotate without -w or on standard input (it reads the input twice).
func checkWriteFile(o *options) error {
	if o.annotate && o.write == "" {
		return usageErr("--annotate writes its comments into the -w file: add -w FILE (e.g. -w annotated.pcapng --annotate)")
	}
	if o.write == "" {
		return nil
	}
	if o.write == "-" {
		return usageErr("-w -: standard output carries the report; give a file name to save packets to")
	}
	out, _ := filepath.Abs(o.write)
	ost, oerr := os.Stat(o.write)
	for _, f := range o.files {
		if o.annotate && f == "-" {
			return usageErr("--annotate reads the capture twice (once to decide the states, once to write them beside the packets): give a file with -r, not standard input")
		}
		in, _ := filepath.Abs(f)
		ist, ierr := os.Stat(f)
		if in == out || oerr == nil && ierr == nil && os.SameFile(ost, ist) {
			return usageErr("-w %s is also read with -r: writing it would destroy the input; give another file name", o.write)
		}
	}
	return nil
}

// openSaver creates the -w file. close writes what is buffered and closes the file.
func openSaver(o *options) (s *capture.Saver, close func() error, err error) {
	f, err := os.Create(o.write)
	if err != nil {
		return nil, nil, &exitError{2, fmt.Sprintf("-w %s: %v", o.write, err)}
	}
	s = capture.NewSaver(f, o.annotate)
	return s, func() error {
		err := s.Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return &exitError{2, fmt.Sprintf("-w %s: %v", o.write, err)}
		}
		return nil
	}, nil
}

// annotations collects, while the capture is analysed, the comment each packet gets.
type annotations struct {
	names  tracker.Naming
	byPkt  map[uint64][]string // key: packetKey
	zeroed map[uint64]uint8    // conn ID -> sides whose window is zero now (bit per side)
}

func newAnnotations(names tracker.Naming) *annotations {
	return &annotations{names: names, byPkt: map[uint64][]string{}, zeroed: map[uint64]uint8{}}
}

func packetKey(file uint16, packet uint64) uint64 { return uint64(file)<<48 | packet&(1<<48-1) }

// attach chains the collector onto cfg's hooks.
func (a *annotations) attach(cfg *flowtable.Config) {
	prevEv, prevSeg := cfg.OnEvent, cfg.OnSegment
	cfg.OnEvent = func(e tracker.Event) {
		if prevEv != nil {
			prevEv(e)
		}
		if e.Packet == 0 {
			return // a timer: no packet to write it on
		}
		k := packetKey(e.File, e.Packet)
		a.byPkt[k] = append(a.byPkt[k], report.ChangeComment(&e, a.names))
	}
	cfg.OnSegment = func(c *tracker.Conn, seg *capture.Segment, kind reassembly.Kind) {
		if prevSeg != nil {
			prevSeg(c, seg, kind)
		}
		if seg.Flags.Has(capture.RST) || seg.Flags.Has(capture.SYN) || kind == reassembly.Duplicate {
			return
		}
		side := tracker.ClientSide
		if seg.Src != c.Client.Addr {
			side = tracker.ServerSide
		}
		bit := uint8(1) << side
		was := a.zeroed[c.ID]&bit != 0
		switch {
		case seg.Window == 0 && !was:
			a.zeroed[c.ID] |= bit
			k := packetKey(seg.File, seg.Packet)
			a.byPkt[k] = append(a.byPkt[k], report.WindowComment(side, true))
		case seg.Window != 0 && was:
			a.zeroed[c.ID] &^= bit
			k := packetKey(seg.File, seg.Packet)
			a.byPkt[k] = append(a.byPkt[k], report.WindowComment(side, false))
		}
	}
}

// write reads the capture again and writes the packets the filter selects, with their
// comments, to the -w file.
func (a *annotations) write(o *options, ccfg capture.Config) error {
	s, closeFile, err := openSaver(o)
	if err != nil {
		return err
	}
	var werr error
	ccfg.Tap = func(p *capture.Tapped) {
		if werr == nil {
			werr = s.Write(p, a.byPkt[packetKey(uint16(p.File), p.Packet)])
		}
	}
	src, err := capture.OpenFiles(o.files, ccfg)
	if err != nil {
		closeFile()
		return &exitError{2, err.Error()}
	}
	var seg capture.Segment
	for src.Next(&seg) && werr == nil {
	}
	src.Close()
	if err := closeFile(); err != nil {
		return err
	}
	if werr != nil {
		return &exitError{2, fmt.Sprintf("-w %s: %v", o.write, werr)}
	}
	return nil
}

// --at: seconds or a duration into the capture, a time of day on the capture's date (UTC),
// or an absolute time. A time outside the capture is an error that names the capture's span.

type atSpec struct {
	abs       time.Time     // absolute
	offset    time.Duration // into the capture, when isOffset
	isOffset  bool
	timeOfDay time.Duration // since midnight UTC of the first packet's day, when isTOD
	isTOD     bool
}

func parseAtSpec(s string) (atSpec, error) {
	if secs, err := parseSeconds(s); err == nil {
		return atSpec{offset: secs, isOffset: true}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return atSpec{offset: d, isOffset: true}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return atSpec{abs: t}, nil
		}
	}
	for _, layout := range []string{"15:04:05.999999999", "15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return atSpec{timeOfDay: t.Sub(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)), isTOD: true}, nil
		}
	}
	return atSpec{}, usageErr("--at %q: give seconds or a duration into the capture (12.5, 12s, 1m30s), a time of day on the capture's date in UTC (18:47:47), or RFC 3339 (2026-11-24T18:47:47Z)", s)
}

func parseSeconds(s string) (time.Duration, error) {
	var secs float64
	if _, err := fmt.Sscanf(s, "%g", &secs); err != nil || secs < 0 || strings.TrimLeft(s, "0123456789.") != "" {
		return 0, fmt.Errorf("not seconds")
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// spanSource watches the segments Run reads for --at: it resolves a time of day on the first
// packet's date, and remembers the first and last times and whether reading stopped at --at.
type spanSource struct {
	capture.RefSource
	spec        atSpec
	at          time.Time // resolved
	first, last time.Time
	pastAt      bool
	peek        *capture.Segment
}

func newSpanSource(src capture.RefSource, spec atSpec) *spanSource {
	return &spanSource{RefSource: src, spec: spec}
}

// resolve reads the first segment (kept for the first NextRef) and returns --at's instant,
// zero when it is an offset that Run resolves itself.
func (s *spanSource) resolve() time.Time {
	s.peek = s.RefSource.NextRef()
	if s.peek != nil {
		s.first = s.peek.Time
	}
	switch {
	case s.spec.isTOD && s.peek != nil:
		y, m, d := s.first.UTC().Date()
		s.at = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(s.spec.timeOfDay)
	case s.spec.isOffset && s.peek != nil:
		s.at = s.first.Add(s.spec.offset)
	case !s.spec.abs.IsZero():
		s.at = s.spec.abs
	}
	return s.at
}

func (s *spanSource) NextRef() *capture.Segment {
	seg := s.peek
	if seg != nil {
		s.peek = nil
	} else {
		seg = s.RefSource.NextRef()
	}
	if seg != nil {
		if seg.Time.After(s.last) {
			s.last = seg.Time
		}
		if !s.at.IsZero() && seg.Time.After(s.at) {
			s.pastAt = true
		}
	}
	return seg
}

func (s *spanSource) Next(seg *capture.Segment) bool {
	p := s.NextRef()
	if p == nil {
		return false
	}
	*seg = *p
	return true
}

// check says, once Run is done, whether --at fell outside the capture: before its first
// packet, or after its last by more than the profile's longest timer (past that, no state can
// change any more: a time that far out is a mistake, such as the wrong day). Within the
// timers, after the last packet, it is a note: the states are aged by the timers to then.
func (s *spanSource) check(given string, p tracker.Profile, stderr io.Writer, quiet bool) error {
	if s.at.IsZero() || s.first.IsZero() {
		return nil
	}
	const f = "2006-01-02 15:04:05.000000"
	span := s.last.Sub(s.first)
	longest := max(p.TimeWait, p.SynTimeout, p.SynAckTimeout, p.FinWait2Orphan)
	switch {
	case s.at.Before(s.first):
		return usageErr("--at %s (%s UTC) is before the capture, which starts at %s UTC: give a time after it, e.g. --at %s, or seconds into the capture (--at 1.5)",
			given, s.at.UTC().Format(f), s.first.UTC().Format(f), s.first.UTC().Format("15:04:05.000000"))
	case !s.pastAt && s.at.Sub(s.last) > longest:
		return usageErr("--at %s (%s UTC) is after the capture, which runs from %s to %s UTC (%s long), by more than the longest %s timer (%s): give a time inside it, e.g. --at %s",
			given, s.at.UTC().Format(f), s.first.UTC().Format(f), s.last.UTC().Format(f), span, p.Name, longest, (span / 2).Round(time.Microsecond))
	case !s.pastAt && s.at.After(s.last) && !quiet:
		fmt.Fprintf(stderr, "tcpstate: note: --at %s is %s after the last packet (the capture runs from %s to %s UTC): the states are as the %s timers left them by then\n",
			given, s.at.Sub(s.last).Round(time.Microsecond), s.first.UTC().Format(f), s.last.UTC().Format(f), p.Name)
	}
	return nil
}

// emptyMessage says in words why there is nothing to show ("" when there is something).
func emptyMessage(o *options, st capture.Stats, conns uint64) string {
	if conns > 0 {
		return ""
	}
	files := strings.Join(o.files, ", ")
	switch {
	case st.Packets == 0:
		return fmt.Sprintf("No packets: %s holds no packet records (a capture header only: was tcpdump stopped before any packet came?)", files)
	case o.filter != "" && st.Filtered == st.Packets:
		return fmt.Sprintf("No TCP connections: %d packets read, none matched '%s'", st.Packets, o.filter)
	case o.filter != "":
		return fmt.Sprintf("No TCP connections: %d packets read, %d matched '%s', none of them TCP", st.Packets, st.Packets-st.Filtered, o.filter)
	}
	return fmt.Sprintf("No TCP connections: %d packets read, none of them TCP (%d not TCP, %d IP fragments)", st.Packets, st.NonTCP, st.Fragments)
}

// oneSidedNote says once that the capture shows one direction only, for n of total connections.
func oneSidedNote(n, total uint64) string {
	return fmt.Sprintf("One-sided capture: %d of %d connections show one direction only (a filter such as 'dst port 80', or a tap on an asymmetric route): their states are inferred ('?'), and only what the captured side's own packets prove is diagnosed; capture both directions for a full picture", n, total)
}
