//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/kernellab"
	"github.com/tcpstate/tcpstate/report"
	"github.com/tcpstate/tcpstate/tracker"
)

const kernelPcaps = "../../testdata/pcaps/kernel/"

// ---- a terminal of our own: /dev/ptmx and the pts ioctls, nothing else ----

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// openPTY opens a pseudo-terminal pair: what the program writes to slave, the test reads from
// master, as a terminal emulator would.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if err := ioctl(m, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	var n uint32
	if err := ioctl(m, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open /dev/pts/%d: %v", n, err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func setWinsize(t *testing.T, f *os.File, rows, cols uint16) {
	t.Helper()
	ws := struct{ Row, Col, X, Y uint16 }{rows, cols, 0, 0}
	if err := ioctl(f, syscall.TIOCSWINSZ, unsafe.Pointer(&ws)); err != nil {
		t.Fatalf("TIOCSWINSZ: %v", err)
	}
}

// syncBuffer collects output written by another goroutine or process.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// readTerminal copies what the terminal shows into a buffer until the slave side is closed.
func readTerminal(master *os.File) (*syncBuffer, <-chan struct{}) {
	b := &syncBuffer{}
	done := make(chan struct{})
	go func() {
		io.Copy(b, master) // ends with EIO once every slave descriptor is closed
		close(done)
	}()
	return b, done
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// frames returns the complete frames of the live view in a terminal's output, each as the
// lines it put on the screen.
func frames(out string) [][]string {
	var fs [][]string
	parts := strings.Split(out, "\x1b[H")
	for _, p := range parts[1:] {
		end := strings.Index(p, "\x1b[J")
		if end < 0 {
			continue
		}
		text := strings.ReplaceAll(ansiRE.ReplaceAllString(p[:end], ""), "\r", "")
		fs = append(fs, strings.Split(text, "\n"))
	}
	return fs
}

// ---- a stand-in capture: a kernel recording replayed as if it had just happened ----

type replaySource struct {
	segs    []capture.Segment
	next    int
	stopped atomic.Bool
}

// replay reads a recording and moves its timestamps so its last packet was ago before now.
func replay(t *testing.T, path string, ago time.Duration) *replaySource {
	t.Helper()
	src, err := capture.OpenFiles([]string{path}, capture.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r := &replaySource{}
	var seg capture.Segment
	for src.Next(&seg) {
		r.segs = append(r.segs, seg)
	}
	shift := time.Now().Add(-ago).Sub(r.segs[len(r.segs)-1].Time)
	for i := range r.segs {
		r.segs[i].Time = r.segs[i].Time.Add(shift)
	}
	return r
}

func (r *replaySource) Poll(seg *capture.Segment) (bool, bool) {
	if r.stopped.Load() {
		return false, false
	}
	if r.next < len(r.segs) {
		*seg = r.segs[r.next]
		r.next++
		return true, true
	}
	time.Sleep(10 * time.Millisecond) // an idle interface
	return false, true
}

func (r *replaySource) Stop() { r.stopped.Store(true) }
func (r *replaySource) Stats() capture.Stats {
	return capture.Stats{Packets: uint64(r.next), TCP: uint64(r.next)}
}
func (r *replaySource) Errs() []*capture.ReadError { return nil }
func (r *replaySource) Flush() error               { return nil }

func linuxProfile(t *testing.T) tracker.Profile {
	p, err := tracker.LookupProfile("linux")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLiveViewOnTerminal: on a terminal the live view redraws in place every second, fits the
// terminal (and follows a resize), shows problems first, and leaves a final table behind.
func TestLiveViewOnTerminal(t *testing.T) {
	master, slave := openPTY(t)
	setWinsize(t, slave, 24, 110)
	screen, closed := readTerminal(master)
	// The recording's packets happened 20 s ago: its resets and refusals are finished by now.
	src := replay(t, kernelPcaps+"mixed-40/capture.pcap", 20*time.Second)
	o := &options{iface: "lab0", output: "table", filter: "tcp"}
	var stderr syncBuffer
	s := newLiveSession(o, tracker.NamesRFC, linuxProfile(t), nil, src, slave, &stderr)
	if s.view == nil {
		t.Fatal("the table output on a terminal is not the live view")
	}
	done := make(chan error, 1)
	go func() { done <- s.run() }()

	waitUntil(t, 10*time.Second, "two frames of the live view", func() bool { return len(frames(screen.String())) >= 2 })
	fs := frames(screen.String())
	f := fs[len(fs)-1]
	text := strings.Join(f, "\n")
	for _, want := range []string{"tcpstate -i lab0 'tcp'", fmt.Sprintf("packets: %d captured, 0 dropped by kernel, 0 dropped by interface", len(src.segs)),
		"states (client/server):", "ID  CLIENT", "problems: syn-unanswered 3, half-closed 7   finished: refused 5, reset 8"} {
		if !strings.Contains(text, want) {
			t.Errorf("the view lacks %q:\n%s", want, text)
		}
	}
	if len(f) > 24 {
		t.Errorf("frame of %d lines on a 24-line terminal", len(f))
	}
	for _, line := range f {
		if len(line) > 110 {
			t.Errorf("line of %d columns on a 110-column terminal: %q", len(line), line)
		}
	}
	// Problems first: the first connection row is a stuck handshake (the refusals and resets
	// finished long ago and were written out).
	for i, line := range f {
		if strings.HasPrefix(line, "ID  ") {
			if i+1 >= len(f) || !strings.Contains(f[i+1], "syn-unanswered") {
				t.Errorf("first row is not a problem:\n%s", text)
			}
			break
		}
	}

	// A smaller terminal: the next frames fit it, and say how many rows did not.
	setWinsize(t, slave, 12, 60)
	waitUntil(t, 5*time.Second, "a frame fitted to 60x12", func() bool {
		fs := frames(screen.String())
		last := fs[len(fs)-1]
		if len(last) > 12 {
			return false
		}
		for _, line := range last {
			if len(line) > 60 {
				return false
			}
		}
		return strings.Contains(strings.Join(last, "\n"), "more connections")
	})

	src.Stop()
	if err := <-done; err != nil {
		t.Fatalf("live session: %v", err)
	}
	slave.Close()
	<-closed
	out := screen.String()
	if !strings.HasPrefix(out, report.LiveEnter) {
		t.Errorf("the view does not start on the alternate screen: %q", out[:min(len(out), 40)])
	}
	i := strings.LastIndex(out, report.LiveLeave)
	if i < 0 {
		t.Fatal("the view never gave the normal screen back")
	}
	final := strings.ReplaceAll(out[i:], "\r", "")
	for _, want := range []string{"ID  CLIENT", "Total: ", "States (client/server):", "Finished during the capture"} {
		if !strings.Contains(final, want) {
			t.Errorf("the final table lacks %q:\n%s", want, final)
		}
	}
	t.Logf("%d frames; last full-size frame:\n%s", len(fs), text)
}

// jsonConn is what the live/offline comparisons look at in a JSON line.
type jsonConn struct {
	ID     uint64 `json:"id"`
	Client struct {
		IP       string `json:"ip"`
		Port     uint16 `json:"port"`
		State    string `json:"state"`
		Inferred bool   `json:"inferred"`
	} `json:"client"`
	Server struct {
		IP       string `json:"ip"`
		Port     uint16 `json:"port"`
		State    string `json:"state"`
		Inferred bool   `json:"inferred"`
	} `json:"server"`
	Packets   uint64   `json:"packets"`
	Bytes     uint64   `json:"bytes"`
	Diagnoses []string `json:"diagnoses"`
	Zeek      struct {
		ConnState string `json:"conn_state"`
		History   string `json:"history"`
	} `json:"zeek"`
}

// key is everything about a connection that must not depend on how it was captured.
func (c jsonConn) key() string {
	return fmt.Sprintf("%s:%d %s%s > %s:%d %s%s pkts %d bytes %d %v zeek %s %s", c.Client.IP, c.Client.Port, c.Client.State,
		inferredMark(c.Client.Inferred), c.Server.IP, c.Server.Port, c.Server.State, inferredMark(c.Server.Inferred),
		c.Packets, c.Bytes, c.Diagnoses, c.Zeek.ConnState, c.Zeek.History)
}

func inferredMark(b bool) string {
	if b {
		return "?"
	}
	return ""
}

func parseJSONLines(t *testing.T, text string) map[uint64]jsonConn {
	t.Helper()
	m := map[uint64]jsonConn{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if line == "" {
			continue
		}
		var c jsonConn
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		if _, dup := m[c.ID]; dup {
			t.Errorf("connection %d written twice", c.ID)
		}
		m[c.ID] = c
	}
	return m
}

// sameConns reports the differences between two sets of connections, by ID.
func sameConns(t *testing.T, what string, got, want map[uint64]jsonConn) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d connections, want %d", what, len(got), len(want))
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("%s: connection %d (%s) missing", what, id, w.key())
			continue
		}
		if g.stableKey() != w.stableKey() {
			t.Errorf("%s: connection %d\n got  %s\n want %s", what, id, g.key(), w.key())
		}
	}
}

// stableKey is key, without the packet count of a connection whose client is still sending
// SYNs: two capture processes stopped a moment apart may each see a different number of its
// retransmissions (one more SYN at 1, 3, 7 s), and nothing else about it differs.
func (c jsonConn) stableKey() string {
	if c.Client.State == "SYN_SENT" && c.Bytes == 0 {
		d := c
		d.Packets = 0
		return d.key()
	}
	return c.key()
}

// TestLiveStreamMatchesOffline: not on a terminal, finished connections are written as they
// finish (before the capture stops), the rest at the end, each once; the result is what the
// offline analysis of the same packets says.
func TestLiveStreamMatchesOffline(t *testing.T) {
	path := kernelPcaps + "mixed-40/capture.pcap"
	src := replay(t, path, 20*time.Second)
	o := &options{iface: "lab0", output: "json"}
	var out, stderr syncBuffer
	s := newLiveSession(o, tracker.NamesRFC, linuxProfile(t), nil, src, &out, &stderr)
	if s.view != nil {
		t.Fatal("live view on a buffer")
	}
	done := make(chan error, 1)
	go func() { done <- s.run() }()
	waitUntil(t, 10*time.Second, "finished connections on the stream", func() bool { return strings.Count(out.String(), "\n") > 0 })
	early := parseJSONLines(t, out.String())
	src.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for id, c := range early {
		if c.Client.State != "CLOSED" || c.Server.State != "CLOSED" {
			t.Errorf("connection %d written before the end in %s/%s", id, c.Client.State, c.Server.State)
		}
	}
	live := parseJSONLines(t, out.String())
	// The live run reports as of the wall clock, some 20 s after the last packet: offline, the
	// same instant is --at that far into the capture (a SYN's silence is a finding only once
	// its retransmission was due, so the instant matters).
	into := s.ropts.Now.Sub(src.segs[0].Time)
	code, offOut, offErr := runCLI("-r", path, "-o", "json", "--at", fmt.Sprintf("%.9f", into.Seconds()))
	if code != 0 {
		t.Fatalf("offline run: exit %d: %s", code, offErr)
	}
	sameConns(t, "live vs offline", live, parseJSONLines(t, offOut))
	t.Logf("%d connections written while capturing, %d in all", len(early), len(live))
}

// TestLiveFailOn: --fail-on holds in live mode too, for connections written out during the
// capture as for those still open at the end.
func TestLiveFailOn(t *testing.T) {
	src := replay(t, kernelPcaps+"mixed-40/capture.pcap", 20*time.Second)
	o := &options{iface: "lab0", output: "json"}
	failOn, err := parseFailOn("refused,syn-unanswered")
	if err != nil {
		t.Fatal(err)
	}
	var out, stderr syncBuffer
	s := newLiveSession(o, tracker.NamesRFC, linuxProfile(t), failOn, src, &out, &stderr)
	done := make(chan error, 1)
	go func() { done <- s.run() }()
	waitUntil(t, 10*time.Second, "finished connections", func() bool { return strings.Contains(out.String(), "refused") })
	src.Stop()
	err = <-done
	ee, ok := err.(*exitError)
	// The recording has 5 refused connections (written out during the capture) and 3 stuck SYNs.
	if !ok || ee.code != 1 || !strings.Contains(ee.msg, "8 finding(s)") || strings.Count(ee.msg, ": refused (server)") != 5 {
		t.Fatalf("--fail-on refused,syn-unanswered: %v", err)
	}
}

// TestLiveTimerOnWallClock: a SYN nobody answers turns CLOSED when the retry budget is spent,
// on the wall clock, with no packet after it.
func TestLiveTimerOnWallClock(t *testing.T) {
	// The recording's first SYN went out 3 s more than the SYN budget ago.
	budget := linuxProfile(t).SynTimeout
	src := replay(t, kernelPcaps+"syn-dropped/capture.pcap", 0)
	first := src.segs[0].Time
	shift := time.Now().Add(-budget - 3*time.Second).Sub(first)
	for i := range src.segs {
		src.segs[i].Time = src.segs[i].Time.Add(shift)
	}
	o := &options{iface: "lab0", output: "events"}
	var out, stderr syncBuffer
	s := newLiveSession(o, tracker.NamesRFC, linuxProfile(t), nil, src, &out, &stderr)
	done := make(chan error, 1)
	go func() { done <- s.run() }()
	waitUntil(t, 10*time.Second, "the SYN timer's event", func() bool { return strings.Contains(out.String(), "SYN_SENT -> CLOSED") })
	src.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "SYN_SENT -> CLOSED") {
			line = l
		}
	}
	deadline := src.segs[0].Time.Add(budget).UTC().Format(report.TimeFormat)
	if !strings.HasPrefix(line, deadline) || !strings.Contains(line, "timer") {
		t.Errorf("timer event %q, want it stamped %s and caused by the timer", line, deadline)
	}
}

// TestLiveUsage: what -i combines with, and -D.
func TestLiveUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-r", kernelPcaps + "refused/capture.pcap", "-p"}, "apply to live capture"},
		{[]string{"-r", kernelPcaps + "refused/capture.pcap", "-s", "96"}, "-s applies to live capture: a file's packets were cut"},
		{[]string{"-i", "lo", "--at", "3"}, "--at does not apply"},
		{[]string{"-i", "lo", "-w", "-"}, "-w -"},
		{[]string{"-i", "lo", "--expect", "x.yaml"}, "do not apply to live capture"},
		{[]string{"-i", "lo", "-c", "-1"}, "positive packet count"},
	} {
		code, _, errs := runCLI(tc.args...)
		if code != 2 || !strings.Contains(errs, tc.msg) {
			t.Errorf("tcpstate %s: exit %d, %q; want exit 2 saying %q", strings.Join(tc.args, " "), code, errs, tc.msg)
		}
	}
	code, out, errs := runCLI("-D")
	if code != 0 || !regexp.MustCompile(`(?m)^1\.\S+`).MatchString(out) || !strings.Contains(out, ".lo") {
		t.Errorf("tcpstate -D: exit %d\n%s%s", code, out, errs)
	}
}

// ---- the real binary ----

// toolBinary builds tcpstate for the tests that run it as a process, where another user can
// run it too.
func toolBinary(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755)
	}
	bin := filepath.Join(dir, "tcpstate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestLiveNeedsCapNetRaw: without CAP_NET_RAW the user is told what is missing and what to do.
func TestLiveNeedsCapNetRaw(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary")
	}
	bin := toolBinary(t)
	cmd := exec.Command(bin, "-i", "lo")
	if os.Geteuid() == 0 {
		// Root: run it as nobody, which has no capabilities.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("tcpstate -i lo without CAP_NET_RAW: %v, want exit 2\n%s", err, stderr.String())
	}
	for _, want := range []string{"CAP_NET_RAW", "sudo", "setcap cap_net_raw"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the error does not mention %q:\n%s", want, stderr.String())
		}
	}
	t.Logf("%s", strings.TrimSpace(stderr.String()))
}

// liveProc is tcpstate capturing in a namespace.
type liveProc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	exited         chan error
	stopTook       time.Duration
}

func startLive(t *testing.T, bin string, ns kernellab.Netns, name string, term *os.File, args ...string) *liveProc {
	t.Helper()
	p := &liveProc{name: name, stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd = ns.Command(context.Background(), bin, args...)
	if term != nil {
		p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = term, term, term
	} else {
		p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
		}
	})
	return p
}

// stop sends sig (SIGINT as Ctrl-C would, or SIGTERM) and waits for a clean exit.
func (p *liveProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	t0 := time.Now()
	p.cmd.Process.Signal(sig)
	p.wait(t, sig.String())
	p.stopTook = time.Since(t0)
}

// wait waits for a clean exit (after what, for messages).
func (p *liveProc) wait(t *testing.T, after string) {
	t.Helper()
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("%s: exit after %s: %v\nstderr: %s", p.name, after, err, p.stderr.String())
		}
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("%s did not exit within 5 s of %s", p.name, after)
	}
}

// TestLiveNamespaces runs `tcpstate -i` on a veth between network namespaces while real kernel
// connections meet several fates, stops it with SIGINT, and holds what it printed against the
// kernels' own `ss`, against the live view on a terminal, and against `tcpstate -r` on the
// file it saved.
func TestLiveNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping live capture in network namespaces")
	}
	if err := kernellab.Preflight(); err != nil {
		t.Skipf("live capture in network namespaces: %v", err)
	}
	bin := toolBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab, err := kernellab.NewLab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab teardown: %v", err)
		}
	}()
	dir := t.TempDir()
	userDir, err := os.MkdirTemp("", "tcpstate-live-user-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(userDir)
	os.Chmod(userDir, 0o777)
	tap := kernellab.RouterClientIface
	const filter = "tcp and not port 82"

	// A: the JSON stream, saving the packets. B: events under the windows timer profile, for the
	// connection whose SYN retries run out (port 82, excluded from A): its socket has TCP_SYNCNT
	// 2, so its kernel gives up after 7 s, and for the SYNs it sends the windows profile's
	// deadline falls then too (linux's default of 6 retries would take minutes). C: the live view
	// on a terminal. D: as A, with privileges dropped to nobody once the interface is open.
	savedA := filepath.Join(dir, "a.pcap")
	// A also fails on syn-unanswered: its only SYN without answer is still being retried when
	// it is stopped, so it must exit 0 (issue 16).
	a := startLive(t, bin, lab.Router, "A", nil, "-i", tap, "-o", "json", "-w", savedA, "--fail-on", "syn-unanswered", filter)
	b := startLive(t, bin, lab.Router, "B", nil, "-i", tap, "-o", "events", "--os", "windows", "tcp port 82")
	master, slave := openPTY(t)
	setWinsize(t, slave, 40, 150)
	screen, screenClosed := readTerminal(master)
	c := startLive(t, bin, lab.Router, "C", slave, "-i", tap)
	savedD := filepath.Join(userDir, "d.pcap")
	d := startLive(t, bin, lab.Router, "D", nil, "-i", tap, "-o", "json", "--user", "nobody", "-w", savedD, filter)
	// E and F stop by themselves: after 5 packets, and after 2 seconds.
	savedE := filepath.Join(dir, "e.pcap")
	e := startLive(t, bin, lab.Router, "E", nil, "-i", tap, "-c", "5", "-o", "json", "-w", savedE, filter)
	f := startLive(t, bin, lab.Router, "F", nil, "-i", tap, "--duration", "2s", "-o", "json", filter)
	for _, p := range []*liveProc{a, b, d, e, f} {
		waitUntil(t, 10*time.Second, p.name+" listening", func() bool { return strings.Contains(p.stderr.String(), "listening on") })
	}
	waitUntil(t, 10*time.Second, "C's first frame", func() bool { return len(frames(screen.String())) >= 1 })

	// D runs as nobody now, and its file is nobody's.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil || !regexp.MustCompile(`(?m)^Uid:\s+65534\s+65534\s+65534\s+65534$`).Match(status) {
		t.Errorf("--user nobody: process status %v\n%s", err, status)
	}
	if fi, err := os.Stat(savedD); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Errorf("--user nobody: -w file %v, want it owned by nobody", err)
	}

	r := &kernellab.Run{Ctx: ctx, Lab: lab}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Port 82: SYNs dropped behind the tap, connect() giving up after 2 retries (at 7 s).
	_, err = r.Listen(false, 82)
	must(err)
	must(r.DropSYNs(false, 82))
	synCnt2 := func(s *kernellab.Sock) error { return s.SetInt(syscall.IPPROTO_TCP, syscall.TCP_SYNCNT, 2) }
	timeout, err := r.Dial(false, 82, "syn-timeout", synCnt2)
	must(err)
	firstSYN := time.Now()

	l4, err := r.Listen(false, 80)
	must(err)
	l6, err := r.Listen(true, 80)
	must(err)
	normal, err := r.Connect(false, 80, l4, "normal-close")
	must(err)
	must(r.Exchange(normal, "GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\nhello\n"))
	must(r.CloseClientFirst(normal))
	half, err := r.Connect(true, 80, l6, "half-close")
	must(err)
	must(r.HalfClose(half))
	idle, err := r.Connect(false, 80, l4, "established")
	must(err)
	must(r.Exchange(idle, "ping\n", "pong\n"))
	_, err = r.Refused(false, 79, "refused")
	must(err)

	// B: the timer fires on the wall clock, with nothing more on the wire.
	waitUntil(t, 20*time.Second, "B's timer event for port 82", func() bool { return strings.Contains(b.stdout.String(), "SYN_SENT -> CLOSED") })
	timerSeen := time.Since(firstSYN)
	if err := timeout.C.SoError(); err != syscall.ETIMEDOUT {
		t.Errorf("port 82: connect error %v, want ETIMEDOUT (the kernel gave up too)", err)
	}
	if !strings.Contains(b.stdout.String(), "connect() gave up") {
		t.Errorf("B's events:\n%s", b.stdout.String())
	}

	// A SYN stuck now, stopped while its kernel still retries.
	_, err = r.Listen(true, 81)
	must(err)
	must(r.DropSYNs(true, 81))
	_, err = r.Dial(true, 81, "stuck-syn")
	must(err)
	time.Sleep(1200 * time.Millisecond)

	for _, p := range []*liveProc{a, b, c} {
		p.stop(t, syscall.SIGINT)
	}
	d.stop(t, syscall.SIGTERM)
	e.wait(t, "-c 5")
	f.wait(t, "--duration 2s")
	if src, err := capture.OpenFiles([]string{savedE}, capture.Config{}); err != nil {
		t.Error(err)
	} else {
		var seg capture.Segment
		for src.Next(&seg) {
		}
		if n := src.Stats().Packets; n != 5 {
			t.Errorf("-c 5 saved %d packets", n)
		}
		src.Close()
	}
	if !strings.Contains(f.stderr.String(), "packets captured") {
		t.Errorf("--duration: no closing statistics:\n%s", f.stderr.String())
	}
	slave.Close()
	<-screenClosed
	ssC, err := lab.SS(ctx, lab.Client, "-tan")
	must(err)
	ssS, err := lab.SS(ctx, lab.Server, "-tan")
	must(err)
	t.Logf("stopped in: A %v, B %v, C %v, D %v; timer event %v after the first SYN (kernel gave up at 7 s)",
		a.stopTook.Round(time.Millisecond), b.stopTook.Round(time.Millisecond), c.stopTook.Round(time.Millisecond),
		d.stopTook.Round(time.Millisecond), timerSeen.Round(time.Millisecond))

	// A agrees with the kernels.
	rowsC, err := kernellab.ParseSS(strings.NewReader(ssC))
	must(err)
	rowsS, err := kernellab.ParseSS(strings.NewReader(ssS))
	must(err)
	notPort82 := func(rows []kernellab.SSRow) []kernellab.SSRow {
		var out []kernellab.SSRow
		for _, r := range rows {
			if r.Local.Port != 82 && r.Peer.Port != 82 {
				out = append(out, r)
			}
		}
		return out
	}
	toolConns, err := kernellab.ParseToolJSON(strings.NewReader(a.stdout.String()))
	must(err)
	res := kernellab.Compare("live", toolConns, notPort82(rowsC), notPort82(rowsS))
	t.Log(res.String())
	if len(res.Mismatches) > 0 {
		t.Errorf("tcpstate -i and ss disagree:\n%s\nss client:\n%sss server:\n%s", kernellab.Table(res.Mismatches), ssC, ssS)
	}
	live := parseJSONLines(t, a.stdout.String())
	if len(live) != 5 {
		t.Errorf("A reported %d connections, want 5:\n%s", len(live), a.stdout.String())
	}
	wantDiag := map[string]string{"refused": ":79 ", "half-closed": "CLOSE_WAIT"}
	// The SYN to :81 was still being retried when the capture stopped: in progress, not
	// syn-unanswered (issue 16: --fail-on syn-unanswered must not fail on a SYN in flight).
	for _, c := range live {
		if strings.Contains(c.key(), ":81 ") && (c.Client.State != "SYN_SENT" || len(c.Diagnoses) > 0) {
			t.Errorf("the SYN in flight to :81 at the end: %s, want SYN_SENT and no diagnosis", c.key())
		}
	}
	for diag, where := range wantDiag {
		found := false
		for _, c := range live {
			if strings.Contains(c.key(), where) && strings.Contains(fmt.Sprint(c.Diagnoses), diag) {
				found = true
			}
		}
		if !found {
			t.Errorf("no connection with %s (%s) in A's output:\n%s", diag, where, a.stdout.String())
		}
	}

	// The saved file, analysed offline, says the same; so does D, running as nobody.
	out, err := exec.Command(bin, "-r", savedA, "-o", "json").Output()
	must(err)
	sameConns(t, "-r on A's -w file vs A", parseJSONLines(t, string(out)), live)
	sameConns(t, "D (--user nobody) vs A", parseJSONLines(t, d.stdout.String()), live)
	outD, err := exec.Command(bin, "-r", savedD, "-o", "json").Output()
	must(err)
	sameConns(t, "-r on D's -w file vs A", parseJSONLines(t, string(outD)), live)

	// C: the view refreshed, then the final table agrees with A.
	term := screen.String()
	if n := len(frames(term)); n < 2 {
		t.Errorf("the live view drew %d frames in %v", n, timerSeen)
	}
	i := strings.LastIndex(term, report.LiveLeave)
	if i < 0 {
		t.Fatalf("C never left the live view:\n%q", term)
	}
	final := strings.ReplaceAll(term[i+len(report.LiveLeave):], "\r", "")
	rows := map[string]string{}
	for _, line := range strings.Split(final, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] != "ID" && regexp.MustCompile(`^\d+$`).MatchString(f[0]) {
			rows[f[1]] = strings.TrimSuffix(f[2], "?") + " " + strings.TrimSuffix(f[4], "?")
		}
	}
	for _, c := range live {
		client := report.AddrPort(netip.AddrPortFrom(netip.MustParseAddr(c.Client.IP), c.Client.Port))
		if got, want := rows[client], c.Client.State+" "+c.Server.State; got != want {
			t.Errorf("C's final table has %s in %q, A says %q:\n%s", client, got, want, final)
		}
	}
	if !strings.Contains(final, "packets captured") || !strings.Contains(final, "Total: ") {
		t.Errorf("C's final output lacks the table summary or the capture statistics:\n%s", final)
	}
	t.Logf("A:\n%sC's final output:\n%s", a.stdout.String(), final)
}
