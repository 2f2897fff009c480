package run_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/benchgen"
	"github.com/tcpstate/tcpstate/report"
	"github.com/tcpstate/tcpstate/run"
	"github.com/tcpstate/tcpstate/tracker"
)

// runJSON runs src through tracker.Run and returns the JSON lines it writes.
func runJSON(t *testing.T, src capture.Source, rc run.Config) string {
	t.Helper()
	var b bytes.Buffer
	o := &report.Options{}
	o.Profile, _ = tracker.LookupProfile("linux")
	s := report.NewStream(&b, "json", o)
	rc.AtEnd = func(now time.Time) { o.Now = now }
	run.Run(src, rc, s.Conn)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestParallelReaderPlacement: the parallel reader decodes segments straight into the batches
// of a file source (lending it slots, guessing the shard) and copies them in where it guessed
// wrong; a source that lends no slot is copied from. Either way every shard count gives what
// one tracker gives: on one long transfer (every segment to one shard: batches fill, grow and
// are sent with the slot lent past their end), on many connections (guesses often wrong),
// with --shard (segments skipped) and with --at (reading stops).
func TestParallelReaderPlacement(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for _, cfg := range []benchgen.Config{
		{Workload: "C", Seed: 1, Scale: 0.006}, // ~12,000 segments of one connection
		{Workload: "A", Seed: 1, Conns: 600, Concurrent: 100},
	} {
		p := filepath.Join(dir, cfg.Workload+".pcap")
		if _, err := benchgen.GenerateFile(p, cfg); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	for _, path := range files {
		for _, v := range []struct {
			name string
			rc   run.Config
		}{
			{"all", run.Config{}},
			{"shard 1/3", run.Config{ShardI: 1, ShardN: 3}},
			{"at", run.Config{AtOffset: 300 * time.Millisecond, AtIsOffset: true}},
		} {
			t.Run(filepath.Base(path)+"/"+v.name, func(t *testing.T) {
				open := func() capture.Source {
					src, err := capture.OpenFiles([]string{path}, capture.Config{})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { src.Close() })
					return src
				}
				var segs []capture.Segment
				var seg capture.Segment
				for src := open(); src.Next(&seg); {
					segs = append(segs, seg)
				}
				want := runJSON(t, open(), v.rc)
				if want == "" {
					t.Fatal("no connections")
				}
				for _, workers := range []int{2, 3} {
					rc := v.rc
					rc.Workers = workers
					if got := runJSON(t, open(), rc); got != want {
						t.Errorf("%d workers, file source: output differs from one tracker's", workers)
					}
					if got := runJSON(t, capture.NewSliceSource(segs), rc); got != want {
						t.Errorf("%d workers, slice source: output differs from one tracker's", workers)
					}
				}
				if got := runJSON(t, capture.NewSliceSource(segs), v.rc); got != want {
					t.Errorf("one tracker, slice source: output differs from the file source's")
				}
			})
		}
	}
}
