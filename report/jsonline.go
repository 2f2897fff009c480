package report

import (
	"encoding/binary"
	"math"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

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
	// detail is the last diagnosis written, with the addresses its sentence names (detailAddrs),
	// and detailJSON its sentence as a JSON string: a flood's connections share it.
	detail     detailKey
	detailJSON []byte
	// evidence: the JSON strings of the inferred states' evidence written so far (few kinds
	// recur: a timer, a midstream start), up to 1024 of them.
	evidence map[tracker.Evidence][]byte
	scratch  []byte
	// osJSON: the "os"... fields of the endpoints written so far, by what they were made from
	// (a capture has few distinct stacks; see osFields).
	osJSON    map[tracker.EndpointOS][]byte
	osScratch []byte    // a set of os fields not kept in osJSON (it is full)
	osLast    [2]osMemo // the latest of osJSON used for a client [0] and a server [1]
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
	b = j.endpoint(b, &c.Client, tracker.ClientSide, now)
	b = append(b, `,"server":`...)
	b = j.endpoint(b, &c.Server, tracker.ServerSide, now)
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
		for i := range c.Diagnoses {
			d := &c.Diagnoses[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendJSONString(b, d.ID)
			b = append(b, `,"endpoint":`...)
			b = appendJSONString(b, d.Side.String())
			b = append(b, `,"detail":`...)
			key := detailKey{d: *d}
			key.side, key.peer = detailAddrs(c, d)
			if key != j.detail || j.detailJSON == nil {
				// A flood's connections share their detail: it is written and escaped once.
				j.scratch = AppendDetail(j.scratch[:0], c, d)
				j.detail, j.detailJSON = key, appendJSONString(j.detailJSON[:0], bytesString(j.scratch))
			}
			b = append(b, j.detailJSON...)
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

func (j *JSONLine) endpoint(b []byte, ep *tracker.Endpoint, side tracker.Side, now time.Time) []byte {
	b = append(b, `{"ip":`...)
	at := len(b)
	b = append(b, '"')
	b = ep.Addr.Addr().AppendTo(b)
	for _, c := range b[at+1:] {
		if !jsonPlain[c] {
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
	if ep.Evidence.Kind != tracker.EvidenceNone {
		b = append(b, `,"evidence":`...)
		b = j.appendEvidence(b, &ep.Evidence)
	}
	if !ep.Since.IsZero() {
		b = append(b, `,"since":`...)
		b = j.time(b, ep.Since)
	}
	if !ep.Deadline.IsZero() && ep.Deadline.After(now) {
		b = append(b, `,"timer_left":`...)
		b = appendSeconds(b, ep.Deadline.Sub(now))
	}
	b = append(b, j.osFields(&ep.OS, ep, side)...)
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
		j.prefix = appendDateTime(j.prefix[:0], t)
	}
	b = append(b, '"')
	b = append(b, j.prefix...)
	us := t.Nanosecond() / 1000
	b = append(b, '.', byte('0'+us/100000), byte('0'+us/10000%10), byte('0'+us/1000%10),
		byte('0'+us/100%10), byte('0'+us/10%10), byte('0'+us%10), 'Z', '"')
	return b
}

// appendDateTime appends t (UTC) as t.AppendFormat(b, "2006-01-02T15:04:05") does, at a
// tenth of the cost for the years 1970 to 9999 (civil date from days, as in H. Hinnant's
// chrono algorithms); other years go through AppendFormat.
func appendDateTime(b []byte, t time.Time) []byte {
	sec := t.Unix()
	if sec < 0 || sec > maxDateTimeSec {
		return t.AppendFormat(b, "2006-01-02T15:04:05")
	}
	days, rem := sec/86400, sec%86400
	z := days + 719468 // days since 0000-03-01
	era := z / 146097
	doe := z - era*146097                                  // day of the 400-year era
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // year of the era
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // day of the year, from March 1st
	mp := (5*doy + 2) / 153                                // month, from March
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	y := yoe + era*400
	if m <= 2 {
		y++
	}
	h, mi, s := rem/3600, rem/60%60, rem%60
	return append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10))
}

// maxDateTimeSec is 9999-12-31T23:59:59Z in Unix seconds.
const maxDateTimeSec = 253402300799

// appendSeconds appends d in seconds as appendJSONFloat(b, d.Seconds()) does. For 1µs <= d <
// 10^15 ns (11 days) the digits are d's own: d/10^9 has at most 15 significant digits, and
// then the nearest float64 to it prints as exactly those digits (no other decimal of 15 digits
// or fewer has that float as its nearest), so it is written directly, unless d.Seconds(),
// which rounds twice, is not that nearest float.
func appendSeconds(b []byte, d time.Duration) []byte {
	if d < 1000 || d >= 1e15 || d.Seconds() != float64(d)/1e9 {
		return appendJSONFloat(b, d.Seconds())
	}
	b = strconv.AppendInt(b, int64(d/time.Second), 10)
	frac := int64(d % time.Second)
	if frac == 0 {
		return b
	}
	digits := 9
	for frac%10 == 0 {
		frac /= 10
		digits--
	}
	b = append(b, '.')
	n := len(b)
	b = append(b, "000000000"[:digits]...)
	for i := n + digits - 1; frac > 0; i-- {
		b[i] = byte('0' + frac%10)
		frac /= 10
	}
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

// plainWord reports whether the 8 bytes at p are all jsonPlain (SWAR: a byte with its top
// bit set, one below 0x20, or one equal to '"' or '&' (0x22, 0x26: 0x26 once bit 2 is set),
// '<' or '>' (0x3c, 0x3e: 0x3e once bit 1 is set) or '\\' sets a top bit in bad).
func plainWord(p *byte) bool {
	const ones = 0x0101010101010101
	x := binary.LittleEndian.Uint64(unsafe.Slice(p, 8))
	qa, lg, bs := (x|0x04*ones)^0x26*ones, (x|0x02*ones)^0x3e*ones, x^'\\'*ones
	bad := x | (x-0x20*ones)&^x | (qa-ones)&^qa | (lg-ones)&^lg | (bs-ones)&^bs
	return bad&(0x80*ones) == 0
}

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
	// Most strings need no escape at all: one pass, eight bytes at a time, then one copy.
	i := 0
	for i+8 <= len(s) && plainWord(unsafe.StringData(s[i:])) {
		i += 8
	}
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

// detailKey is what a diagnosis's sentence is written from (JSONLine.detail).
type detailKey struct {
	d          tracker.Diagnosis
	side, peer netip.AddrPort
}

// appendEvidence appends the JSON string of why a state is inferred.
func (j *JSONLine) appendEvidence(b []byte, e *tracker.Evidence) []byte {
	if js, ok := j.evidence[*e]; ok {
		return append(b, js...)
	}
	j.scratch = AppendEvidence(j.scratch[:0], e)
	at := len(b)
	b = appendJSONString(b, bytesString(j.scratch))
	if j.evidence == nil {
		j.evidence = map[tracker.Evidence][]byte{}
	}
	if len(j.evidence) < 1024 {
		j.evidence[*e] = append([]byte(nil), b[at:]...)
	}
	return b
}

// bytesString is b as a string, without a copy: for reading only while b is not written.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
