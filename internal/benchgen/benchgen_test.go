package benchgen_test

import (
	"bytes"
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/internal/benchgen"
	"github.com/tcpstate/tcpstate/tracker"
)

func generate(t *testing.T, cfg benchgen.Config) ([]byte, benchgen.Result) {
	t.Helper()
	var buf bytes.Buffer
	res, err := benchgen.Generate(&buf, cfg)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", cfg, err)
	}
	if res.Bytes != int64(buf.Len()) {
		t.Errorf("workload %s: Result.Bytes %d, wrote %d", cfg.Workload, res.Bytes, buf.Len())
	}
	return buf.Bytes(), res
}

func TestDeterministic(t *testing.T) {
	for _, w := range benchgen.Workloads() {
		t.Run(w, func(t *testing.T) {
			cfg := benchgen.Config{Workload: w, Seed: 7, Scale: 0.003}
			a, ra := generate(t, cfg)
			b, rb := generate(t, cfg)
			if sha256.Sum256(a) != sha256.Sum256(b) || ra != rb {
				t.Fatalf("same seed, different output: %d bytes %x vs %d bytes %x",
					len(a), sha256.Sum256(a), len(b), sha256.Sum256(b))
			}
			cfg.Seed = 8
			c, _ := generate(t, cfg)
			if bytes.Equal(a, c) {
				t.Errorf("seeds 7 and 8 gave identical files")
			}
		})
	}
}

// track reads a generated file the way tcpstate does and returns the tracker after Finish.
// Each segment is also passed to see, if not nil.
func track(t *testing.T, cfg benchgen.Config, see func(*capture.Segment)) (*flowtable.Table, benchgen.Result, capture.Stats) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.pcap")
	res, err := benchgen.GenerateFile(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := capture.OpenFiles([]string{path}, capture.Config{VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tr := flowtable.New(flowtable.Config{})
	var seg capture.Segment
	for src.Next(&seg) {
		if seg.BadChecksum || seg.Truncated {
			t.Fatalf("packet %d: bad checksum %v, truncated %v", seg.Packet, seg.BadChecksum, seg.Truncated)
		}
		if see != nil {
			see(&seg)
		}
		tr.Add(&seg)
	}
	for _, e := range src.Errs() {
		t.Errorf("reading: %v", e)
	}
	tr.Finish(time.Time{})
	st := src.Stats()
	if st.Packets != uint64(res.Packets) || st.TCP != uint64(res.Packets) {
		t.Errorf("generated %d packets; capture read %d, %d of them TCP", res.Packets, st.Packets, st.TCP)
	}
	return tr, res, st
}

func TestWorkloadAEndsClientTimeWaitServerClosed(t *testing.T) {
	cfg := benchgen.Config{Workload: "A", Seed: 1, Scale: 0.01}
	tr, res, _ := track(t, cfg, nil)
	conns := tr.Conns()
	if want := cfg.ExpectedConns(); len(conns) != want || res.Conns != want {
		t.Fatalf("%d connections tracked, %d generated; want %d", len(conns), res.Conns, want)
	}
	bad := 0
	for _, c := range conns {
		if c.Client.State != tracker.TimeWait || c.Server.State != tracker.Closed ||
			c.Client.Inferred || c.Server.Inferred || len(c.Diagnoses) > 0 || c.Midstream {
			if bad++; bad <= 5 {
				t.Errorf("conn %d %v -> %v: client %v (inferred %v), server %v (inferred %v), diagnoses %v; want TIME_WAIT, CLOSED, none",
					c.ID, c.Client.Addr, c.Server.Addr, c.Client.State, c.Client.Inferred, c.Server.State, c.Server.Inferred, c.Diagnoses)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d connections did not end client TIME_WAIT / server CLOSED", bad, len(conns))
	}
	if perConn := float64(res.Packets) / float64(len(conns)); perConn < 11 || perConn > 15 {
		t.Errorf("%.1f packets per connection, want about 13", perConn)
	}
}

func TestWorkloadBIsUnansweredSYNs(t *testing.T) {
	cfg := benchgen.Config{Workload: "B", Seed: 1, Scale: 0.005}
	tr, res, _ := track(t, cfg, nil)
	conns := tr.Conns()
	if len(conns) != int(res.Packets) || len(conns) != cfg.ExpectedConns() {
		t.Fatalf("%d connections from %d SYNs; want one per SYN (%d)", len(conns), res.Packets, cfg.ExpectedConns())
	}
	// At the last packet the latest SYNs are in progress; 5 s on (within the SYN timeout),
	// every SYN's retransmission was due and did not come.
	tr.Tick(tr.Now.Add(5 * time.Second))
	conns = tr.Conns()
	for _, c := range conns {
		if c.Client.State != tracker.SynSent || !c.HasDiagnosis("syn-unanswered") {
			t.Fatalf("conn %d: client %v, diagnoses %v; want SYN_SENT, syn-unanswered", c.ID, c.Client.State, c.Diagnoses)
		}
	}
}

func TestWorkloadCIsOneCleanTransfer(t *testing.T) {
	cfg := benchgen.Config{Workload: "C", Seed: 1, Scale: 0.02}
	var dataSegs, rexmits, sacks int
	var high uint32
	see := func(s *capture.Segment) {
		if s.Opts.Has&capture.HasSACK != 0 {
			sacks++
		}
		if s.PayloadLen == 0 || s.Src.Port() != 8443 {
			return
		}
		dataSegs++
		if dataSegs > 1 && int32(uint32(s.Seq)-high) < 0 {
			rexmits++
		} else {
			high = uint32(s.Seq) + s.PayloadLen
		}
	}
	tr, res, _ := track(t, cfg, see)
	conns := tr.Conns()
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	c := conns[0]
	// The server closes first: it ends in TIME_WAIT, the client CLOSED; the losses are behind
	// the tap, so nothing is missing from the capture.
	if c.Client.State != tracker.Closed || c.Server.State != tracker.TimeWait || len(c.Diagnoses) > 0 {
		t.Errorf("client %v, server %v, diagnoses %v; want CLOSED, TIME_WAIT, none", c.Client.State, c.Server.State, c.Diagnoses)
	}
	if want := int64(40_000); res.Packets < want*99/100 || res.Packets > want*101/100 {
		t.Errorf("%d packets, want %d ±1%%", res.Packets, want)
	}
	if rexmits == 0 || sacks == 0 {
		t.Errorf("%d data segments, %d of them retransmissions, %d ACKs with SACK blocks: want losses", dataSegs, rexmits, sacks)
	}
	t.Logf("%d packets, %d data segments, %d retransmissions, %d SACK dup ACKs", res.Packets, dataSegs, rexmits, sacks)
}
