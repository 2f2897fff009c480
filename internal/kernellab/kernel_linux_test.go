package kernellab

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestKernelFresh records the scenarios anew (root, network namespaces) and holds the tool
// against recordings it has never seen, at the end of each capture and at every at-snapshot.
// Scenarios marked Slow (kernel timers running out: a minute and more) are left out unless
// TCPSTATE_KERNEL_SLOW=1; their committed recordings are still checked by TestKernelAgreement.
func TestKernelFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the fresh kernel recordings")
	}
	if err := Preflight(); err != nil {
		t.Skipf("cannot record kernel ground truth here: %v", err)
	}
	out := t.TempDir()
	if d := os.Getenv("KERNELLAB_FRESH_OUT"); d != "" {
		out = d // keep the fresh recordings (to look into a disagreement)
		t.Logf("recording into %s (KERNELLAB_FRESH_OUT)", out)
	}
	slow := os.Getenv("TCPSTATE_KERNEL_SLOW") == "1"
	limit := 3 * time.Minute
	if slow {
		limit = 6 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	t0 := time.Now()
	metas, err := RecordAll(ctx, out, RecordOptions{Parallel: 4, Retries: 1, SkipSlow: !slow, Logf: t.Logf})
	n := 0
	for _, m := range metas {
		if m != nil {
			n++
		}
	}
	t.Logf("recorded %d scenarios in %.1fs", n, time.Since(t0).Seconds())
	if !slow {
		t.Logf("slow scenarios left out of the fresh run (TCPSTATE_KERNEL_SLOW=1 records them too): a representative subset")
	}
	if err != nil {
		t.Errorf("recording: %v", err)
	}
	dirs, derr := ScenarioDirs(out)
	if derr != nil || len(dirs) == 0 {
		t.Fatalf("no fresh recordings: %v", derr)
	}
	again := func(t *testing.T, name string) string {
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := RecordAll(ctx, dir, RecordOptions{Only: []string{name}, Parallel: 1, Retries: 1, Logf: t.Logf}); err != nil {
			t.Logf("recording %s again: %v", name, err)
			return ""
		}
		return filepath.Join(dir, name)
	}
	t.Run("end", func(t *testing.T) { agreement(t, out, dirs, again) })
	t.Run("at", func(t *testing.T) { atAgreement(t, out, dirs) })
	t.Run("duplicates", func(t *testing.T) { duplicates(t, dirs) })
}

func TestTCPFIN(t *testing.T) {
	v4 := make([]byte, 40)
	v4[0], v4[9] = 0x45, 6
	v4[20+13] = FlagFIN | FlagACK
	if !tcpFIN(v4) {
		t.Error("IPv4 FIN not seen")
	}
	v4[20+13] = FlagACK
	if tcpFIN(v4) {
		t.Error("IPv4 ACK taken for FIN")
	}
	v6 := make([]byte, 60)
	v6[0], v6[6] = 0x60, 6
	v6[40+13] = FlagFIN
	if !tcpFIN(v6) {
		t.Error("IPv6 FIN not seen")
	}
	if tcpFIN(v6[:45]) || tcpFIN(nil) {
		t.Error("truncated packet taken for FIN")
	}
}

func TestSplitNetlink(t *testing.T) {
	// Messages whose length is not a multiple of 4: padded between messages, not at the end.
	a := nfqMsg(nfqnlMsgPacket, 0, 1, 0, nlAttr(nfqaPayload, []byte{1, 2, 3}))
	ne.PutUint32(a, 27)
	b := nfqMsg(nfqnlMsgPacket, 0, 2, 0, nlAttr(nfqaPayload, []byte{1}))
	ne.PutUint32(b, 25)
	buf := append(append([]byte{}, a...), b[:25]...)
	got := splitNetlink(buf)
	if len(got) != 2 || len(got[0]) != 27 || len(got[1]) != 25 {
		t.Fatalf("split into %d messages, want 2 of 27 and 25 bytes", len(got))
	}
}

// TestLabTeardown checks that a lab leaves no namespace behind.
func TestLabTeardown(t *testing.T) {
	if err := Preflight(); err != nil {
		t.Skipf("cannot build a lab here: %v", err)
	}
	lab, err := NewLab(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names := []string{lab.Client.Name, lab.Router.Name, lab.Server.Name}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(netnsDir, n)); err == nil {
			t.Errorf("namespace %s left behind", n)
		}
	}
}
