package report

import (
	"fmt"
	"io"
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// Progress draws a one-line progress bar for reading files, on a terminal: how much of the
// input is read, how fast, and how long is left. It is redrawn in place (carriage return) at
// most every progressEvery, and cleared by Done, so nothing of it stays on the screen.
type Progress struct {
	w     io.Writer
	total int64 // bytes of input (as stored: compressed for .gz), 0 when unknown (stdin)
	start time.Time
	last  time.Time
	drawn bool
}

const progressEvery = 200 * time.Millisecond

// NewProgress returns a progress bar for an input of total bytes (0: unknown), started at
// now. The caller reads the clock: report does not.
func NewProgress(w io.Writer, total int64, now time.Time) *Progress {
	return &Progress{w: w, total: total, start: now}
}

// Update redraws the bar for what st says was read by now (not more often than
// progressEvery).
func (p *Progress) Update(st capture.Stats, now time.Time) {
	if now.Sub(p.last) < progressEvery || now.Sub(p.start) < time.Second {
		return
	}
	p.last = now
	io.WriteString(p.w, "\r"+p.Line(st, now)+"\x1b[K")
	p.drawn = true
}

// Line is the bar's text.
func (p *Progress) Line(st capture.Stats, now time.Time) string {
	el := now.Sub(p.start).Seconds()
	rate := ""
	if el > 0 {
		rate = fmt.Sprintf(", %s packets/s", si(float64(st.Packets)/el))
	}
	if p.total <= 0 {
		return fmt.Sprintf("tcpstate: %s read, %d packets%s", mb(st.Bytes), st.Packets, rate)
	}
	frac := min(float64(st.Bytes)/float64(p.total), 1)
	const width = 30
	full := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = ' '
		if i < full {
			bar[i] = '='
		} else if i == full {
			bar[i] = '>'
		}
	}
	eta := "?"
	if frac > 0 && el > 0 {
		left := time.Duration(el * (1 - frac) / frac * float64(time.Second)).Round(time.Second)
		eta = left.String()
	}
	return fmt.Sprintf("tcpstate: [%s] %3.0f%% %s of %s%s, ETA %s", bar, frac*100, mb(st.Bytes), mb(p.total), rate, eta)
}

// Done clears the bar.
func (p *Progress) Done() {
	if p.drawn {
		io.WriteString(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

func mb(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KB", n>>10)
}

func si(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.1fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.0fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}
