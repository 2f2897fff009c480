package capture

// This is the only file that uses libpcap (through gopacket/pcap, cgo): to compile tcpdump
// filter expressions, once per link type. Programs then run in pure Go on golang.org/x/net/bpf,
// so filtering costs no cgo call per packet. To drop the libpcap dependency, replace
// compileFilter and newOfflineMatcher with a pure-Go compiler; nothing else needs to change.

import (
	"fmt"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// filterSnaplen is the snapshot length filters are compiled for. A BPF program accepts a packet
// by returning the number of bytes to keep: the snaplen. It must not be 0 (that rejects all).
const filterSnaplen = 262144

// bpfFilter applies a tcpdump expression to raw frames of any link type, compiling it the first
// time each link type is seen (pcapng files can mix link types).
type bpfFilter struct {
	expr  string
	progs []linkProgram
	last  int // index in progs of the last link type used: files rarely switch
}

type linkProgram struct {
	link uint16
	vm   *bpf.VM
	// cgo is used instead of vm for the rare programs the pure-Go VM cannot run exactly: those
	// loading the packet's wire length (`len`, `greater`, `less`: the VM only knows the captured
	// length) and those negating (`neg`, unimplemented in x/net/bpf).
	cgo *pcap.BPF
	// never is set when the expression cannot apply to this link type (libpcap refuses to
	// compile it): every packet of that link type is rejected, as libpcap would not match it.
	never bool
}

// newFilter compiles expr for Ethernet to validate it eagerly, so a typo is reported when the
// input is opened, in libpcap's words.
func newFilter(expr string) (*bpfFilter, error) {
	f := &bpfFilter{expr: expr}
	p, err := compileFilter(linkEthernet, expr)
	if err != nil {
		return nil, fmt.Errorf("bad filter expression %q: %v; the syntax is tcpdump's (see man pcap-filter)", expr, err)
	}
	f.progs = append(f.progs, p)
	return f, nil
}

// match reports whether the frame passes the filter. Frames are those of pcap records: data is
// what was captured, wireLen the length on the wire.
func (f *bpfFilter) match(link uint16, data []byte, wireLen int) bool {
	p := &f.progs[f.last]
	if p.link != link {
		p = f.program(link)
	}
	switch {
	case p.never:
		return false
	case p.cgo != nil:
		return p.cgo.Matches(gopacket.CaptureInfo{CaptureLength: len(data), Length: wireLen}, data)
	}
	n, err := p.vm.Run(data)
	return err == nil && n > 0
}

// program finds or compiles the program for a link type.
func (f *bpfFilter) program(link uint16) *linkProgram {
	for i := range f.progs {
		if f.progs[i].link == link {
			f.last = i
			return &f.progs[i]
		}
	}
	p, err := compileFilter(link, f.expr)
	if err != nil {
		p = linkProgram{link: link, never: true}
	}
	f.progs = append(f.progs, p)
	f.last = len(f.progs) - 1
	return &f.progs[f.last]
}

// compileFilter compiles expr with libpcap for a link type (a LINKTYPE_ value from a file).
func compileFilter(link uint16, expr string) (linkProgram, error) {
	dlt := linkToDLT(link)
	raw, err := pcap.CompileBPFFilter(layers.LinkType(dlt), filterSnaplen, expr)
	if err != nil {
		return linkProgram{}, err
	}
	ins := make([]bpf.Instruction, len(raw))
	exact := true
	for i, r := range raw {
		ins[i] = bpf.RawInstruction{Op: r.Code, Jt: r.Jt, Jf: r.Jf, K: r.K}.Disassemble()
		switch ins[i].(type) {
		case bpf.LoadExtension, bpf.NegateA, bpf.RawInstruction:
			exact = false
		}
	}
	if !exact {
		m, err := pcap.NewBPF(layers.LinkType(dlt), filterSnaplen, expr)
		if err != nil {
			return linkProgram{}, err
		}
		return linkProgram{link: link, cgo: m}, nil
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		return linkProgram{}, fmt.Errorf("libpcap produced a program the BPF VM refuses: %v", err)
	}
	return linkProgram{link: link, vm: vm}, nil
}

// linkToDLT maps a file's LINKTYPE_ value to the DLT_ value libpcap's compiler expects. They are
// equal except for raw IP, whose DLT number differs between platforms (12, or 14 on OpenBSD).
func linkToDLT(link uint16) uint16 {
	switch link {
	case linkRaw, linkRaw12, linkRaw14:
		if dlt := pcap.DatalinkNameToVal("RAW"); dlt > 0 {
			return uint16(dlt)
		}
		return linkRaw12
	}
	return link
}
