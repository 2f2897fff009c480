package report

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tcpstate/tcpstate/tracker"
)

// JSONLine writes the JSON line of a connection (JSONConn, as encoding/json's Encoder writes
// it, byte for byte: TestJSONLineMatchesEncoder holds it to that) without reflection or
// allocation: -o json on a capture of millions of connections spends its time here otherwise.
// Timestamps reuse the formatted date and time of the previous one when they fall in the same
// second.
type JSONLine struct {
	o      *Options
	sec    int64 // the second whose "2006-01-02T15:04:05" is in prefix
	prefix []byte
}

// NewJSONLine returns a writer of JSON lines for options o.
func NewJSONLine(o *Options) *JSONLine { return &JSONLine{o: o, sec: math.MinInt64} }

// Append appends c's JSON line (with its newline) to b.
func (j *JSONLine) Append(b []byte, c *tracker.Conn) []byte {
	o := j.o
	now := asOf(c, o)
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, c.ID, 10)
	b = append(b, `,"client":`...)
	b = j.endpoint(b, &c.Client, now)
	b = append(b, `,"server":`...)
	b = j.endpoint(b, &c.Server, now)
	b = append(b, `,"first_seen":`...)
	b = j.time(b, c.FirstSeen)
	b = append(b, `,"last_seen":`...)
	b = j.time(b, c.LastSeen)
	b = append(b, `,"packets":`...)
	b = strconv.AppendUint(b, c.Packets, 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendUint(b, c.Bytes, 10)
	b = append(b, `,"diagnoses":[`...)
	for i, d := range c.Diagnoses {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, d.ID)
	}
	b = append(b, ']')
	if len(c.Diagnoses) > 0 {
		b = append(b, `,"diagnosis_details":[`...)
		for i, d := range c.Diagnoses {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendJSONString(b, d.ID)
			b = append(b, `,"endpoint":`...)
			b = appendJSONString(b, d.Side.String())
			b = append(b, `,"detail":`...)
			b = appendJSONString(b, d.Detail)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"zeek":{"conn_state":`...)
	b = appendJSONString(b, c.Zeek.ConnState())
	b = append(b, `,"history":`...)
	b = appendJSONString(b, c.Zeek.History)
	if c.Zeek.RowsDropped > 0 {
		b = append(b, `,"rows_dropped":`...)
		b = strconv.AppendUint(b, c.Zeek.RowsDropped, 10)
	}
	b = append(b, '}')
	if c.Midstream {
		b = append(b, `,"midstream":true`...)
	}
	if c.Reuses != 0 {
		b = append(b, `,"reuses":`...)
		b = strconv.AppendUint(b, c.Reuses, 10)
	}
	if c.ReusedBy != 0 {
		b = append(b, `,"reused_by":`...)
		b = strconv.AppendUint(b, c.ReusedBy, 10)
	}
	if c.TunnelSrc != "" {
		b = append(b, `,"tunnel":{"kind":`...)
		b = appendJSONString(b, TunnelName(c.Tunnel))
		b = append(b, `,"src":`...)
		b = appendJSONString(b, c.TunnelSrc)
		b = append(b, `,"dst":`...)
		b = appendJSONString(b, c.TunnelDst)
		b = append(b, '}')
	}
	b = append(b, `,"os_profile":`...)
	b = appendJSONString(b, o.Profile.Name)
	if c.Evicted {
		b = append(b, `,"evicted":true`...)
	}
	if c.TimedOut {
		b = append(b, `,"timed_out":true`...)
	}
	return append(b, "}\n"...)
}

func (j *JSONLine) endpoint(b []byte, ep *tracker.Endpoint, now time.Time) []byte {
	b = append(b, `{"ip":`...)
	at := len(b)
	b = append(b, '"')
	b = ep.Addr.Addr().AppendTo(b)
	for _, c := range b[at+1:] {
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			// An IPv6 zone can hold anything: escape it as encoding/json would.
			b = appendJSONString(b[:at], ep.Addr.Addr().String())
			b = b[:len(b)-1]
			break
		}
	}
	b = append(b, `","port":`...)
	b = strconv.AppendUint(b, uint64(ep.Addr.Port()), 10)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, ep.State.String())
	b = append(b, `,"inferred":`...)
	b = strconv.AppendBool(b, ep.Inferred)
	if ep.Evidence != "" {
		b = append(b, `,"evidence":`...)
		b = appendJSONString(b, ep.Evidence)
	}
	if !ep.Since.IsZero() {
		b = append(b, `,"since":`...)
		b = j.time(b, ep.Since)
	}
	if !ep.Deadline.IsZero() && ep.Deadline.After(now) {
		b = append(b, `,"timer_left":`...)
		b = appendJSONFloat(b, ep.Deadline.Sub(now).Seconds())
	}
	return append(b, '}')
}

// time appends ts(t) as a JSON string.
func (j *JSONLine) time(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, `""`...)
	}
	t = t.UTC()
	if sec := t.Unix(); sec != j.sec || j.prefix == nil {
		j.sec = sec
		j.prefix = t.AppendFormat(j.prefix[:0], "2006-01-02T15:04:05")
	}
	b = append(b, '"')
	b = append(b, j.prefix...)
	us := t.Nanosecond() / 1000
	b = append(b, '.', byte('0'+us/100000), byte('0'+us/10000%10), byte('0'+us/1000%10),
		byte('0'+us/100%10), byte('0'+us/10%10), byte('0'+us%10), 'Z', '"')
	return b
}

// appendJSONFloat is encoding/json's float64 encoding.
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// jsonPlain says which bytes appendJSONString copies as they are: printable ASCII but for the
// quote, the backslash and the HTML-unsafe <, > and &.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString is encoding/json's string encoding, HTML-safe as its Encoder is by default.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	// Most strings need no escape at all: one pass over a table, then one copy.
	i := 0
	for i < len(s) && jsonPlain[s[i]] {
		i++
	}
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
