package report

import (
	"fmt"
	"strings"

	"github.com/tcpstate/tcpstate/tracker"
)

// One definition of a problem everywhere (issue 16): tracker.Problem. The table's summary, the
// live view, the HTML report, --fail-on any and not_diagnoses: any all use it. Diagnoses that
// are not problems are notes: midstream and capture-gap say something about the capture (what
// the tap did not see), port-reused and idle about the 4-tuple's history; they stay visible,
// labelled as notes.

// captureNote reports whether a diagnosis describes the capture rather than the connection.
func captureNote(id string) bool {
	return id == tracker.DiagMidstream || id == tracker.DiagCaptureGap
}

// ProblemCounts lists the problems' counts, most serious first ("" when none).
func ProblemCounts(m map[string]int) string {
	return counts(m, func(id string) bool { return tracker.Problem(id) })
}

// NoteCounts lists the notes' counts, those about the capture labelled so ("" when none).
func NoteCounts(m map[string]int) string {
	var parts []string
	if c := counts(m, func(id string) bool { return !tracker.Problem(id) && !captureNote(id) }); c != "" {
		parts = append(parts, c)
	}
	if c := counts(m, captureNote); c != "" {
		parts = append(parts, "about the capture, not the connections: "+c)
	}
	return strings.Join(parts, "; ")
}

func counts(m map[string]int, keep func(string) bool) string {
	var parts []string
	for _, id := range tracker.AllDiagnoses {
		if n := m[id]; n > 0 && keep(id) {
			parts = append(parts, fmt.Sprintf("%s %d", id, n))
		}
	}
	return strings.Join(parts, ", ")
}
