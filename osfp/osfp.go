// Package osfp tells an endpoint's operating system family from what it sends, the way p0f
// does: the initial TTL (64, 128, 255), and in its SYN or SYN-ACK the window, MSS, window
// scale, timestamps and above all the order of the TCP options, which each stack writes its
// own way. The signatures are public knowledge (p0f's p0f.fp, the stacks' sources); the code
// is ours.
//
// It also reads the user's --os setting (Policy): one family for every endpoint, or per
// address/CIDR and per side, with inference ("auto") for the rest.
package osfp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tcpstate/tcpstate/capture"
)

// Family is an operating system family, as far as its TCP timers and state names go.
type Family uint8

const (
	Unknown Family = iota
	Linux
	Windows
	BSD // FreeBSD and its kin
	MacOS
	numFamilies
)

var familyNames = [numFamilies]string{"unknown", "linux", "windows", "bsd", "macos"}

func (f Family) String() string {
	if f >= numFamilies {
		return "unknown"
	}
	return familyNames[f]
}

// ParseFamily reads a family name (linux, windows, bsd, freebsd, macos, darwin).
func ParseFamily(s string) (Family, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "linux":
		return Linux, nil
	case "windows", "win":
		return Windows, nil
	case "bsd", "freebsd":
		return BSD, nil
	case "macos", "darwin", "osx", "ios":
		return MacOS, nil
	}
	return Unknown, fmt.Errorf("unknown OS %q: use linux, windows, bsd or macos", s)
}

// Facts are what one endpoint's packets said about its stack. The zero value says nothing.
type Facts struct {
	TTL    uint8 // as seen at the capture point (IPv6: hop limit)
	Window uint16
	MSS    uint16
	WScale uint8
	Layout capture.OptionLayout
	What   uint8 // factsTTL: any packet; factsSYN: its SYN; factsSYNACK: its SYN-ACK
	TS     bool
	WS     bool
}

// What the facts were read from.
const (
	factsNone uint8 = iota
	factsTTL
	factsSYN
	factsSYNACK
)

// FromSegment reads the facts of seg's sender: the full signature from a SYN or SYN-ACK,
// the TTL alone from any other segment.
func FromSegment(seg *capture.Segment) Facts {
	f := Facts{TTL: seg.TTL, What: factsTTL}
	if !seg.Flags.Has(capture.SYN) || seg.Flags.Has(capture.RST) {
		return f
	}
	f.What = factsSYN
	if seg.Flags.Has(capture.ACK) {
		f.What = factsSYNACK
	}
	f.Window, f.Layout = seg.Window, seg.Opts.Layout
	f.MSS, f.WScale = seg.Opts.MSS, seg.Opts.WScale
	f.TS = seg.Opts.Has&capture.HasTimestamps != 0
	f.WS = seg.Opts.Has&capture.HasWScale != 0
	return f
}

// FromHandshake reports whether the facts come from a SYN or SYN-ACK (a full signature).
func (f Facts) FromHandshake() bool { return f.What >= factsSYN }

// Known reports whether the facts say anything.
func (f Facts) Known() bool { return f.What != factsNone }

// InitialTTL is the TTL the sender most likely started from: the next of 64, 128, 255 at or
// above what was seen (paths are shorter than 64 hops).
func InitialTTL(seen uint8) uint8 {
	switch {
	case seen <= 64:
		return 64
	case seen <= 128:
		return 128
	}
	return 255
}

// Evidence is the facts in words, for the JSON "os_evidence" field.
func (f Facts) Evidence() string { return string(f.AppendEvidence(nil)) }

// AppendEvidence appends Evidence to b (without fmt: a flood of SYNs writes one per
// connection).
func (f Facts) AppendEvidence(b []byte) []byte {
	if !f.Known() {
		return b
	}
	b = append(b, "ttl "...)
	b = strconv.AppendUint(b, uint64(f.TTL), 10)
	if !f.FromHandshake() {
		return append(b, ", no SYN or SYN-ACK seen"...)
	}
	what := "SYN"
	if f.What == factsSYNACK {
		what = "SYN-ACK"
	}
	b = append(b, ", "...)
	b = append(b, what...)
	b = append(b, " win "...)
	b = strconv.AppendUint(b, uint64(f.Window), 10)
	if f.MSS != 0 {
		b = append(b, ", mss "...)
		b = strconv.AppendUint(b, uint64(f.MSS), 10)
	}
	if f.WS {
		b = append(b, ", ws "...)
		b = strconv.AppendUint(b, uint64(f.WScale), 10)
	}
	b = append(b, ", options "...)
	if f.Layout == 0 {
		return append(b, "none"...)
	}
	return append(b, f.Layout.String()...)
}

// Option layouts of the stacks' SYNs and SYN-ACKs (p0f's "olayout" field; p0f.fp and each
// stack's tcp_output). A SYN-ACK carries only what the SYN offered, in the same order.
var layouts = []struct {
	layout string
	family Family
	why    string
}{
	// Linux tcp_options_write (net/ipv4/tcp_output.c): MSS, then SACK-permitted folded into
	// the timestamps option, then NOP + window scale; without timestamps NOP NOP SACK-perm.
	{"mss,sok,ts,nop,ws", Linux, "Linux option order"},
	{"mss,sok,ts", Linux, "Linux option order"},
	{"mss,nop,nop,sok,nop,ws", Linux, "Linux option order without timestamps"},
	{"mss,nop,nop,ts,nop,ws", Linux, "Linux option order without SACK"},
	{"mss,nop,nop,sok", Linux, "Linux option order without timestamps or window scale"},
	// Windows 7 to 11 (p0f.fp "s:win:Windows:7 or 8", "10"): no timestamps by default.
	{"mss,nop,ws,nop,nop,sok", Windows, "Windows option order"},
	{"mss,nop,ws,nop,nop,ts,sok,eol", MacOS, "macOS/iOS option order"},
	// FreeBSD tcp_addoptions (sys/netinet/tcp_output.c): MSS, NOP + window scale, SACK-perm,
	// timestamps (p0f.fp "s:unix:FreeBSD:9.x or newer").
	{"mss,nop,ws,sok,ts", BSD, "FreeBSD option order"},
	{"mss,nop,ws,sok,nop,nop", BSD, "FreeBSD option order without timestamps"},
}

// Classify names the family the facts point to, and why. Unknown when they do not decide.
func Classify(f Facts) (Family, string) { return classify(f, true) }

// FamilyOf is Classify without the why: what the tracker asks on every handshake packet, so
// it allocates nothing (Classify's sentence is built only when a report asks for it).
func FamilyOf(f Facts) Family {
	fam, _ := classify(f, false)
	return fam
}

func classify(f Facts, why bool) (Family, string) {
	if !f.Known() {
		return Unknown, ""
	}
	say := func(s ...string) string {
		if !why {
			return ""
		}
		return strings.Join(s, "")
	}
	init := InitialTTL(f.TTL)
	if f.FromHandshake() {
		for i, l := range layouts {
			if !layoutMatches(f.Layout, layoutCodes[i]) {
				continue
			}
			switch {
			case l.family == Windows && init == 128:
				return Windows, say(l.why, " and initial TTL 128")
			case l.family != Windows && init == 64:
				return l.family, say(l.why, " and initial TTL 64")
			}
		}
		if init == 128 {
			return Windows, say("initial TTL 128, option order not one we know")
		}
		return Unknown, say("no signature matches (initial TTL ", strconv.Itoa(int(init)), ")")
	}
	if init == 128 {
		return Windows, say("initial TTL 128 (Windows' default; no SYN or SYN-ACK seen)")
	}
	return Unknown, say("initial TTL ", strconv.Itoa(int(init)), " alone does not tell the OS (no SYN or SYN-ACK seen)")
}

// layoutCode is a signature's option order as the decoder writes it (capture.OptionLayout),
// with the number of kinds in it.
type layoutCode struct {
	code capture.OptionLayout
	n    int
}

// layoutCodes are the layouts of the signatures, parsed once.
var layoutCodes = func() []layoutCode {
	kinds := map[string]uint8{"eol": 255, "nop": 1, "mss": 2, "ws": 3, "sok": 4, "sack": 5, "ts": 8}
	out := make([]layoutCode, len(layouts))
	for i, l := range layouts {
		for j, name := range strings.Split(l.layout, ",") {
			k, ok := kinds[name]
			if !ok {
				panic("osfp: unknown option " + name + " in signature " + l.layout)
			}
			out[i].code |= capture.OptionLayout(k) << (8 * j)
			out[i].n = j + 1
		}
	}
	return out
}()

// layoutMatches reports whether seen is the signature's order, or that order followed by a
// TCP Fast Open cookie (kind 34: it comes after the stack's usual options).
func layoutMatches(seen capture.OptionLayout, sig layoutCode) bool {
	if seen == sig.code {
		return true
	}
	if sig.n >= 8 {
		return false
	}
	mask := capture.OptionLayout(1)<<(8*sig.n) - 1
	return seen&mask == sig.code && uint8(seen>>(8*sig.n)) == 34
}

// Policy is the --os setting: a family forced on every endpoint, on addresses, or on a side,
// and inference for the rest.
type Policy struct {
	all   Family // forced on every endpoint the rules leave (Unknown: infer)
	auto  bool   // inference for endpoints no rule or all decides
	rules []rule
}

type rule struct {
	prefix netip.Prefix // valid: by address
	side   string       // "client" or "server" (when prefix is not valid)
	family Family
}

// Auto is the default: every endpoint's family inferred.
func Auto() Policy { return Policy{auto: true} }

// ParsePolicy reads --os: "auto", a family ("linux", "windows", "bsd", "macos"), or a comma
// list of those and ADDR|CIDR|client|server=FAMILY rules ("auto,10.1.0.0/16=windows,server=linux").
// Rules win over the family or auto; the longest matching prefix wins, then the side rule.
func ParsePolicy(s string) (Policy, error) {
	var p Policy
	if strings.TrimSpace(s) == "" {
		return Auto(), nil
	}
	base := false
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, isRule := strings.Cut(item, "=")
		if !isRule {
			if base {
				return p, fmt.Errorf("--os %q: give one of auto or a family, then rules like 192.0.2.0/24=windows", s)
			}
			base = true
			if strings.EqualFold(item, "auto") {
				p.auto = true
				continue
			}
			f, err := ParseFamily(item)
			if err != nil {
				return p, fmt.Errorf("--os: %v (or auto, or ADDR/CIDR/client/server=OS)", err)
			}
			p.all = f
			continue
		}
		f, err := ParseFamily(v)
		if err != nil {
			return p, fmt.Errorf("--os %s: %v", item, err)
		}
		r := rule{family: f}
		switch k = strings.ToLower(strings.TrimSpace(k)); k {
		case "client", "server":
			r.side = k
		default:
			if pr, err := netip.ParsePrefix(k); err == nil {
				r.prefix = pr.Masked()
			} else if a, err := netip.ParseAddr(k); err == nil {
				r.prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			} else {
				return p, fmt.Errorf("--os %s: %q is not an address, a CIDR, client or server", item, k)
			}
		}
		p.rules = append(p.rules, r)
	}
	if !base {
		p.auto = true // only rules: infer the others
	}
	return p, nil
}

// Active reports whether the policy does more than nothing (the zero Policy leaves every
// endpoint to the tracker's single profile, as before per-endpoint profiles).
func (p Policy) Active() bool { return p.auto || p.all != Unknown || len(p.rules) > 0 }

// Forced returns the family the user set for an endpoint at addr on side client (or not), if any.
func (p Policy) Forced(addr netip.Addr, client bool) (Family, bool) {
	addr = addr.Unmap()
	best, bits := Unknown, -1
	for _, r := range p.rules {
		if r.prefix.IsValid() && r.prefix.Contains(addr) && r.prefix.Bits() > bits {
			best, bits = r.family, r.prefix.Bits()
		}
	}
	if bits >= 0 {
		return best, true
	}
	side := "server"
	if client {
		side = "client"
	}
	for _, r := range p.rules {
		if r.side == side {
			return r.family, true
		}
	}
	if p.all != Unknown {
		return p.all, true
	}
	return Unknown, false
}

// Infers reports whether endpoints no rule decides are inferred.
func (p Policy) Infers() bool { return p.auto }
