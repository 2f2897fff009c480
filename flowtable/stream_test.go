package flowtable_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/report"
	"github.com/tcpstate/tcpstate/run"
	"github.com/tcpstate/tcpstate/tracker"
)

// corpusCaptures lists every capture of the test corpora: the bundled public and kernel
// recordings and, when it is there, the shared public corpus beside the repository.
func corpusCaptures(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, root := range []string{"../testdata/pcaps", "../../shared/pcaps"} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if ext := filepath.Ext(p); ext == ".pcap" || ext == ".pcapng" || ext == ".gz" || ext == ".cap" {
				files = append(files, p)
			}
			return nil
		})
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Skip("no captures found")
	}
	return files
}

// outputs is what a run writes, in every format.
type outputs struct{ json, zeek, table, tableV, events string }

// diff says where b differs from a. Events are compared as a set: a streaming run writes the
// timer expiries of the connections it finishes early when it finishes them, not at the end.
func (a outputs) diff(b outputs) string {
	for _, f := range []struct{ name, x, y string }{{"json", a.json, b.json}, {"zeek", a.zeek, b.zeek},
		{"table", a.table, b.table}, {"table -v", a.tableV, b.tableV}, {"events", sortLines(a.events), sortLines(b.events)}} {
		if f.x != f.y {
			xl, yl := strings.Split(f.x, "\n"), strings.Split(f.y, "\n")
			for i := 0; i < max(len(xl), len(yl)); i++ {
				var x, y string
				if i < len(xl) {
					x = xl[i]
				}
				if i < len(yl) {
					y = yl[i]
				}
				if x != y {
					return fmt.Sprintf("%s differs at line %d:\n  want: %s\n  got:  %s", f.name, i+1, x, y)
				}
			}
		}
	}
	return ""
}

// reference runs the tracker the plain way: every connection kept to the end.
func reference(t *testing.T, path string, at time.Duration) outputs {
	src, err := capture.OpenFiles([]string{path}, capture.Config{})
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	defer src.Close()
	var ev bytes.Buffer
	o := &report.Options{Verbose: true}
	tr := flowtable.New(flowtable.Config{OnEvent: func(e tracker.Event) { report.WriteEvent(&ev, &e, o) }})
	var seg capture.Segment
	var stop time.Time
	for src.Next(&seg) {
		if at >= 0 && stop.IsZero() {
			stop = seg.Time.Add(at)
		}
		if !stop.IsZero() && seg.Time.After(stop) {
			break
		}
		tr.Add(&seg)
	}
	now := tr.Now
	if !stop.IsZero() {
		now = stop
	}
	tr.Finish(now)
	o.Now = now
	o.Profile, _ = tracker.LookupProfile("linux")
	var out outputs
	var b bytes.Buffer
	report.WriteJSON(&b, tr.Conns(), o)
	out.json = b.String()
	b.Reset()
	report.WriteZeek(&b, tr.Conns())
	out.zeek = b.String()
	b.Reset()
	report.WriteTable(&b, tr.Conns(), o)
	out.tableV = b.String()
	b.Reset()
	o.Verbose = false
	report.WriteTable(&b, tr.Conns(), o)
	out.table = b.String()
	out.events = ev.String()
	return out
}

// streamed runs the same capture through tracker.Run with the given settings.
func streamed(t *testing.T, path string, at time.Duration, workers int, sc flowtable.StreamConfig) outputs {
	var out outputs
	for _, format := range []string{"json", "zeek", "table", "table -v", "events"} {
		src, err := capture.OpenFiles([]string{path}, capture.Config{})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		o := &report.Options{Verbose: format == "table -v"}
		o.Profile, _ = tracker.LookupProfile("linux")
		s := report.NewStream(&b, strings.TrimSuffix(format, " -v"), o)
		rc := run.Config{Stream: sc, Workers: workers, AtEnd: func(now time.Time) { o.Now = now }}
		if at >= 0 {
			rc.AtOffset, rc.AtIsOffset = at, true
		}
		if format == "events" {
			rc.OnEvent = func(e tracker.Event) { report.WriteEvent(&b, &e, o) }
		}
		run.Run(src, rc, s.Conn)
		src.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		switch format {
		case "json":
			out.json = b.String()
		case "zeek":
			out.zeek = b.String()
		case "table":
			out.table = b.String()
		case "table -v":
			out.tableV = b.String()
		case "events":
			out.events = b.String()
		}
	}
	return out
}

// TestStreamingMatchesKeepingEverything: streaming (connections finished, packed, unpacked,
// reordered) writes exactly what keeping every connection to the end writes, on every capture
// of the corpus, in every format, also with every connection packed after each packet.
func TestStreamingMatchesKeepingEverything(t *testing.T) {
	for _, path := range corpusCaptures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := reference(t, path, -1)
			for _, v := range []struct {
				name    string
				workers int
				sc      flowtable.StreamConfig
			}{
				{"default", 1, flowtable.StreamConfig{}},
				{"all-packed", 1, flowtable.StreamConfig{MaxLive: -1}},
				{"2 workers", 2, flowtable.StreamConfig{}},
				{"3 workers, all packed", 3, flowtable.StreamConfig{MaxLive: -1}},
			} {
				if d := want.diff(streamed(t, path, -1, v.workers, v.sc)); d != "" {
					t.Errorf("%s: %s", v.name, d)
				}
			}
		})
	}
}

func sortLines(s string) string {
	l := strings.Split(s, "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// TestIdleTimeout: a connection silent for the idle timeout is finished as it stood then
// (TimedOut), the same way whatever the number of workers, and one closed at both ends is not
// flagged (it would have been finished as closed anyway).
func TestIdleTimeout(t *testing.T) {
	path := "../../shared/pcaps/zeek/tcp_one-sided-2745.pcap" // two connections, then 5 hours of others
	if _, err := os.Stat(path); err != nil {
		t.Skip(err)
	}
	var first string
	for _, workers := range []int{1, 2, 3} {
		sc := flowtable.StreamConfig{IdleTimeout: time.Hour}
		got := streamed(t, path, -1, workers, sc)
		// The capture is one-sided: the server's LAST_ACK is reported (inferred), not diagnosed.
		if !strings.Contains(got.json, `"timed_out":true`) || !strings.Contains(got.json, `"state":"LAST_ACK","inferred":true`) {
			t.Errorf("%d workers: no connection timed out after an hour:\n%s", workers, got.json)
		}
		if workers == 1 {
			first = got.json
		} else if got.json != first {
			t.Errorf("%d workers: %s", workers, (outputs{json: first}).diff(outputs{json: got.json}))
		}
	}
}
