package main

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/tracker"
)

// tableRows is the set of a table's connection rows (the lines that start with an ID).
func tableRows(out string) []string {
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] != "ID" && strings.Trim(f[0], "0123456789") == "" {
			rows = append(rows, strings.Join(f, " "))
		}
	}
	sort.Strings(rows)
	return rows
}

// After Ctrl-C, the final table lists the connections that finished during the capture as well
// as those still open: the same rows as tcpstate -r on the same packets (issue 16).
func TestLiveFinalTableListsFinished(t *testing.T) {
	path := kernelPcaps + "mixed-40/capture.pcap"
	src := replay(t, path, 20*time.Second)
	o := &options{iface: "lab0", output: "table"}
	var out, stderr syncBuffer
	s := newLiveSession(o, tracker.NamesRFC, linuxProfile(t), nil, src, &out, &stderr)
	l := s.prepare()
	done := make(chan error, 1)
	go func() { done <- s.run() }()
	waitUntil(t, 15*time.Second, "connections finished during the capture", func() bool {
		return l.Finished() > 0 // the first tick comes after the whole replay
	})
	src.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if !strings.Contains(text, "Finished during the capture: ") {
		t.Errorf("the table does not say connections finished during the capture:\n%s", text)
	}
	into := s.ropts.Now.Sub(src.segs[0].Time)
	code, off, errs := runCLI("-r", path, "--at", fmt.Sprintf("%.9f", into.Seconds()))
	if code != 0 {
		t.Fatalf("offline: exit %d: %s", code, errs)
	}
	live, offline := tableRows(text), tableRows(off)
	if len(live) != 44 || strings.Join(live, "\n") != strings.Join(offline, "\n") {
		t.Errorf("live final table (%d rows) differs from -r (%d rows):\n%s\n--- -r:\n%s", len(live), len(offline), text, off)
	}
}

// --problems (and --state) choose the connections live too: the stream while capturing and
// the rest at the end.
func TestLiveProblemsFilter(t *testing.T) {
	path := kernelPcaps + "mixed-40/capture.pcap"
	src := replay(t, path, 20*time.Second)
	o := &options{iface: "lab0", output: "json", problems: true}
	var out, stderr syncBuffer
	s := newLiveSession(o, tracker.NamesRFC, linuxProfile(t), nil, src, &out, &stderr)
	if s.cf, _ = parseConnFilter("", true); s.cf == nil {
		t.Fatal("no filter")
	}
	l := s.prepare()
	done := make(chan error, 1)
	go func() { done <- s.run() }()
	waitUntil(t, 15*time.Second, "connections finished during the capture", func() bool { return l.Finished() > 0 })
	src.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	conns := parseJSONLines(t, out.String())
	if len(conns) < 10 || len(conns) >= 44 {
		t.Fatalf("--problems: %d connections written, want those with a problem only:\n%s", len(conns), out.String())
	}
	for _, c := range conns {
		if len(c.Diagnoses) == 0 {
			t.Errorf("--problems wrote a connection without a problem: %s", c.key())
		}
	}
}
