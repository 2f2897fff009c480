package report

import (
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/tracker"
)

// One definition of a problem (issue 16): the table's summary (which the HTML report's count
// is, through Summarize) and the live view agree, and notes about the capture (midstream, capture-gap) are shown as notes.
func TestProblemDefinitionAgrees(t *testing.T) {
	for _, name := range []string{"midstream", "gap-data", "mixed-40"} {
		src, err := capture.OpenFiles([]string{kernelPcaps + name + "/capture.pcap"}, capture.Config{})
		if err != nil {
			t.Fatal(err)
		}
		tr := flowtable.New(flowtable.Config{})
		var seg capture.Segment
		for src.Next(&seg) {
			tr.Add(&seg)
		}
		src.Close()
		tr.Finish(time.Time{})
		conns := tr.Conns()
		want := 0
		notes := false
		for _, c := range conns {
			problem := false
			for _, d := range c.Diagnoses {
				problem = problem || tracker.Problem(d.ID)
				notes = notes || !tracker.Problem(d.ID)
			}
			if problem {
				want++
			}
		}
		o := &Options{Now: tr.Now}
		s := Summarize(conns)
		if s.Problems != want {
			t.Errorf("%s: summary counts %d problems, want %d", name, s.Problems, want)
		}
		var table strings.Builder
		WriteTable(&table, conns, o)
		var frame strings.Builder
		(&LiveView{Width: 200, Height: 80}).Frame(&frame, conns, &LiveStatus{Now: tr.Now}, o)
		live := ansi.ReplaceAllString(frame.String(), "")
		if want == 0 && !strings.Contains(live, "problems: none") {
			t.Errorf("%s: no problem, but the live view says otherwise:\n%s", name, live)
		}
		if notes != strings.Contains(live, "notes (not problems): ") || notes != strings.Contains(table.String(), "Notes, not problems") {
			t.Errorf("%s: notes %v, not labelled as such:\n%s\n%s", name, notes, table.String(), live)
		}
		for _, id := range []string{tracker.DiagMidstream, tracker.DiagCaptureGap} {
			if s.Diagnoses[id] > 0 && (strings.Contains(live, "problems: "+id) || !strings.Contains(table.String(), "about the capture, not the connections: ")) {
				t.Errorf("%s: %s shown as a problem:\n%s\n%s", name, id, table.String(), live)
			}
		}
	}
}
