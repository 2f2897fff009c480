//go:build linux

package capture

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/internal/kernellab"
)

// Live capture is tested on real interfaces: the kernel lab's client—router—server namespaces
// joined by veths (documentation addresses), capturing in the router as a tap would.

// liveLab builds a lab, or skips saying why it cannot (not root, no namespaces, no tools).
func liveLab(t *testing.T) *kernellab.Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping live capture in network namespaces")
	}
	if err := kernellab.Preflight(); err != nil {
		t.Skipf("live capture needs the namespace lab: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lab, err := kernellab.NewLab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab teardown: %v", err)
		}
	})
	return lab
}

// openLiveIn opens a capture inside a namespace: the packet socket stays there for life.
func openLiveIn(t *testing.T, ns kernellab.Netns, cfg LiveConfig) *Live {
	t.Helper()
	var l *Live
	if err := ns.Do(func() error {
		var err error
		l, err = OpenLive(cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// collect polls l in a goroutine until it ends and returns what it delivered.
func collect(l *Live) <-chan []Segment {
	ch := make(chan []Segment, 1)
	go func() {
		var segs []Segment
		var seg Segment
		for l.Next(&seg) {
			segs = append(segs, seg)
		}
		ch <- segs
	}()
	return ch
}

// connection drives one request/answer connection closed by the client, through the router.
func connection(t *testing.T, lab *kernellab.Lab, v6 bool, port uint16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := &kernellab.Run{Ctx: ctx, Lab: lab}
	l, err := r.Listen(v6, port)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Connect(v6, port, l, "live")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Exchange(c, "GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\nhello\n"); err != nil {
		t.Fatal(err)
	}
	if err := r.CloseClientFirst(c); err != nil {
		t.Fatal(err)
	}
}

// TestLiveMatchesSavedFile captures real connections on the tap and checks that the segments
// delivered live are exactly those read back from the file SaveTo wrote.
func TestLiveMatchesSavedFile(t *testing.T) {
	lab := liveLab(t)
	l := openLiveIn(t, lab.Router, LiveConfig{Interface: kernellab.RouterClientIface, Promisc: true, Filter: "tcp"})
	if l.LinkName() != "EN10MB" {
		t.Errorf("link type on a veth: %s, want EN10MB", l.LinkName())
	}
	path := filepath.Join(t.TempDir(), "live.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := l.SaveTo(f); err != nil {
		t.Fatal(err)
	}
	got := collect(l)
	connection(t, lab, false, 80)
	connection(t, lab, true, 8080)
	time.Sleep(100 * time.Millisecond)
	l.Stop()
	live := <-got
	st := l.Stats()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(l.Errs()) > 0 {
		t.Fatalf("capture errors: %v", l.Errs()[0])
	}
	if len(live) < 20 {
		t.Fatalf("captured %d segments of two full connections, want at least 20", len(live))
	}
	if st.KernelDropped != 0 || st.Packets != st.TCP || st.Packets != uint64(len(live)) {
		t.Errorf("stats %+v for %d segments: want every packet TCP (filter tcp) and none dropped", st, len(live))
	}
	saved := readAll(t, []string{path}, Config{})
	if len(saved.segs) != len(live) {
		t.Fatalf("saved file holds %d segments, live delivered %d", len(saved.segs), len(live))
	}
	for i := range live {
		a, b := live[i], saved.segs[i]
		b.Offset = 0 // the file reader knows where each record is; a live capture has no offsets
		if !a.Time.Equal(b.Time) {
			t.Fatalf("segment %d: live time %v, saved %v", i+1, a.Time, b.Time)
		}
		a.Time, b.Time = time.Time{}, time.Time{}
		if a != b {
			t.Fatalf("segment %d differs:\nlive  %+v\nsaved %+v", i+1, a, b)
		}
	}
	if live[0].Packet != 1 || live[len(live)-1].Packet != uint64(len(live)) {
		t.Errorf("packet numbers run %d..%d, want 1..%d", live[0].Packet, live[len(live)-1].Packet, len(live))
	}
	v6 := 0
	for _, s := range live {
		if s.Src.Addr().Is6() {
			v6++
		}
	}
	if v6 == 0 || v6 == len(live) {
		t.Errorf("%d of %d segments are IPv6; the test drove one IPv4 and one IPv6 connection", v6, len(live))
	}
}

// TestLiveStopIdle: Stop ends a capture on an interface where nothing happens, promptly: a read
// never blocks for longer than the read timeout.
func TestLiveStopIdle(t *testing.T) {
	lab := liveLab(t)
	l := openLiveIn(t, lab.Router, LiveConfig{Interface: kernellab.RouterServerIface, Filter: "tcp port 9"})
	got := collect(l)
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	l.Stop()
	select {
	case segs := <-got:
		t.Logf("capture ended %v after Stop on an idle interface (read timeout %v)", time.Since(t0).Round(time.Millisecond), DefaultReadTimeout)
		if len(segs) != 0 {
			t.Errorf("%d segments on an idle interface", len(segs))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the capture did not end within 5 s of Stop on an idle interface")
	}
}

// TestLiveAnyAndCount captures on the "any" pseudo-interface (Linux cooked headers) and stops
// by itself after Count packets.
func TestLiveAnyAndCount(t *testing.T) {
	lab := liveLab(t)
	l := openLiveIn(t, lab.Router, LiveConfig{Interface: "any", Promisc: true, Filter: "tcp", Count: 6})
	if n := l.LinkName(); n != "LINUX_SLL" && n != "LINUX_SLL2" {
		t.Errorf("link type of any: %s, want LINUX_SLL or LINUX_SLL2", n)
	}
	got := collect(l)
	connection(t, lab, false, 80)
	var segs []Segment
	select {
	case segs = <-got:
	case <-time.After(5 * time.Second):
		l.Stop()
		t.Fatal("the capture did not stop by itself after Count packets")
	}
	if st := l.Stats(); st.Packets != 6 || len(segs) != 6 {
		t.Fatalf("Count 6: %d packets read, %d segments delivered", st.Packets, len(segs))
	}
	// On "any" the tap sees each forwarded packet twice (in on rc, out on rs): the first is a SYN.
	if !segs[0].Flags.Has(SYN) || segs[0].Src.Addr() != kernellab.ClientV4 {
		t.Errorf("first segment on any: %+v, want the client's SYN", segs[0])
	}
}

// TestOpenLiveErrors: what a user gets for an unknown interface or a bad filter.
func TestOpenLiveErrors(t *testing.T) {
	if _, err := OpenLive(LiveConfig{Interface: "eth0", Filter: "port eighty"}); err == nil ||
		!strings.Contains(err.Error(), "bad filter expression") {
		t.Errorf("bad filter: %v", err)
	}
	_, err := OpenLive(LiveConfig{Interface: "tsl-no-such0"})
	if err == nil {
		t.Fatal("opened an interface that does not exist")
	}
	if os.Geteuid() == 0 && !strings.Contains(err.Error(), "no such interface") {
		t.Errorf("unknown interface: %v", err)
	}
	if os.Geteuid() != 0 && !strings.Contains(err.Error(), "CAP_NET_RAW") && !strings.Contains(err.Error(), "no such interface") {
		t.Errorf("unknown interface without privileges: %v", err)
	}
	t.Logf("unknown interface: %v", err)
}

// TestLiveInterfaceGone: when the interface disappears the capture ends with an error that
// names it, and what was read before stays delivered.
func TestLiveInterfaceGone(t *testing.T) {
	lab := liveLab(t)
	l := openLiveIn(t, lab.Router, LiveConfig{Interface: kernellab.RouterServerIface})
	got := collect(l)
	time.Sleep(200 * time.Millisecond)
	if _, err := lab.Router.Run(context.Background(), "ip", "link", "del", kernellab.RouterServerIface); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		l.Stop()
		<-got
		t.Fatal("the capture went on after its interface was deleted")
	}
	errs := l.Errs()
	if len(errs) != 1 || errs[0].File != kernellab.RouterServerIface {
		t.Fatalf("errors after the interface went away: %v", errs)
	}
	t.Logf("%v", errs[0])
}
