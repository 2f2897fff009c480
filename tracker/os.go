package tracker

import (
	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/pack"
	"github.com/tcpstate/tcpstate/osfp"
)

// EndpointOS is what the tracker knows of an endpoint's operating system: the family whose
// profile ages its states, whether the user set it (--os) or it was inferred, and the facts
// it was inferred from.
type EndpointOS struct {
	Family osfp.Family
	Forced bool // set by --os (for every endpoint, its address or its side)
	Facts  osfp.Facts
}

// Inferred reports whether the family was inferred from the endpoint's packets.
func (o *EndpointOS) Inferred() bool { return !o.Forced && o.Family != osfp.Unknown }

// familyProfiles: the profile of each family; Unknown is the tracker's own (Config.Profile).
var familyProfiles = [...]string{osfp.Linux: "linux", osfp.Windows: "windows", osfp.BSD: "bsd", osfp.MacOS: "macos"}

// profileOf is the profile that ages ep's states: its OS's when per-endpoint profiles are on
// (Config.OS) and its OS is known, else the tracker's one profile.
func (t *Tracker) profileOf(ep *Endpoint) *Profile {
	if ep.OS.Family == osfp.Unknown || int(ep.OS.Family) >= len(t.osProfiles) {
		return &t.cfg.Profile
	}
	return &t.osProfiles[ep.OS.Family]
}

// initOS fills the per-family profiles (New).
func (t *Tracker) initOS() {
	if !t.cfg.OS.Active() {
		return
	}
	t.osProfiles = make([]Profile, len(familyProfiles))
	for f, name := range familyProfiles {
		if name != "" {
			t.osProfiles[f] = profiles[name]
		}
	}
}

// observeOS learns the OS of seg's sender: once from its SYN or SYN-ACK, or from its TTL
// while no handshake packet of it has been seen. A forced family is set on the endpoint's
// first packet. Its SYN/SYN-ACK retry budget follows its profile.
func (t *Tracker) observeOS(c *Conn, seg *capture.Segment) {
	if t.osProfiles == nil {
		return
	}
	side := c.sideOf(seg)
	ep := c.endpoint(side)
	o := &ep.OS
	if o.Facts.FromHandshake() || o.Forced && o.Facts.Known() {
		return
	}
	f := osfp.FromSegment(seg)
	if o.Facts.Known() && !f.FromHandshake() {
		return
	}
	o.Facts = f
	if fam, ok := t.cfg.OS.Forced(ep.Addr.Addr(), side == ClientSide); ok {
		o.Family, o.Forced = fam, true
	} else if t.cfg.OS.Infers() {
		o.Family = osfp.FamilyOf(f)
	}
	p := t.profileOf(ep)
	if side == ClientSide {
		ep.ev.retries = p.SynRetries
	} else {
		ep.ev.retries = p.SynAckRetries
	}
}

// pack visits the endpoint's OS (dormant connections keep it).
func (o *EndpointOS) pack(k *pack.Codec) {
	pack.Uint(k, &o.Family)
	f := &o.Facts
	pack.Uint(k, &f.TTL)
	pack.Uint(k, &f.Window)
	pack.Uint(k, &f.MSS)
	pack.Uint(k, &f.WScale)
	pack.Uint(k, &f.Layout)
	pack.Uint(k, &f.What)
	k.Bools(&o.Forced, &f.TS, &f.WS)
}

// StateName is the endpoint's state in vocabulary n; NamesAuto names it as its own OS does
// (Linux's ss for Linux and unknown endpoints, netstat for Windows, BSD and macOS).
func (ep *Endpoint) StateName(n Naming) string {
	if n == NamesAuto {
		switch ep.OS.Family {
		case osfp.Windows:
			n = NamesWindows
		case osfp.BSD, osfp.MacOS:
			n = NamesBSD
		default:
			n = NamesLinux
		}
	}
	return ep.State.Name(n)
}
