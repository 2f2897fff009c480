package kernellab

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"time"
)

// Packet is a TCP segment decoded from a capture (only what the recorder's checks need).
type Packet struct {
	N          int // 1-based packet number in the file
	Time       time.Time
	Src, Dst   netip.AddrPort
	Flags      uint8
	Seq, Ack   uint32
	Win        uint16
	IPID       uint16 // IPv4 identification (0 for IPv6)
	TSval      uint32 // TCP timestamp value (0 without the option)
	HasTS      bool
	PayloadLen int
	CapLen     int // bytes captured (link layer included)
	WireLen    int
}

// TCP flag bits.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// Has reports whether all the given flag bits are set.
func (p Packet) Has(f uint8) bool { return p.Flags&f == f }

func (p Packet) String() string {
	fl := ""
	for _, x := range []struct {
		b uint8
		c string
	}{{FlagSYN, "S"}, {FlagFIN, "F"}, {FlagRST, "R"}, {FlagPSH, "P"}, {FlagACK, "."}} {
		if p.Flags&x.b != 0 {
			fl += x.c
		}
	}
	return fmt.Sprintf("#%d %s > %s [%s] seq %d ack %d win %d len %d", p.N, p.Src, p.Dst, fl, p.Seq, p.Ack, p.Win, p.PayloadLen)
}

// CaptureInfo summarises a capture file.
type CaptureInfo struct {
	Frames     int // all frames, TCP or not
	TCP        []Packet
	First      time.Time
	Last       time.Time
	MaxCapLen  int
	MaxWireLen int
}

// ReadCapture decodes a classic pcap file of Ethernet frames (what tcpdump -w writes on a veth).
func ReadCapture(path string) (*CaptureInfo, error) {
	f, err := ReadPcap(path, false)
	if f == nil {
		return nil, err
	}
	return f.Info(), err
}

// ReadLiveCapture decodes what a running tcpdump has written so far (a partial last record is
// ignored, a missing file is an empty capture).
func ReadLiveCapture(path string) (*CaptureInfo, error) {
	if fi, err := os.Stat(path); err != nil || fi.Size() < 24 {
		return &CaptureInfo{}, nil
	}
	f, err := ReadPcap(path, true)
	if f == nil {
		return nil, err
	}
	return f.Info(), err
}

// PcapRecord is one record of a classic pcap file: its 16-byte header (in the file's byte
// order) and the captured bytes.
type PcapRecord struct {
	Hdr  [16]byte
	Data []byte
	Time time.Time
}

// PcapFile is a classic pcap file held in memory (the lab's captures are small).
type PcapFile struct {
	Header  [24]byte
	Order   binary.ByteOrder
	Nano    bool
	Records []PcapRecord
}

// ReadPcap reads a classic pcap file of Ethernet frames. With partialOK a truncated last
// record (a file tcpdump is still writing) is dropped silently.
func ReadPcap(path string, partialOK bool) (*PcapFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pf := &PcapFile{}
	if _, err := io.ReadFull(f, pf.Header[:]); err != nil {
		return nil, fmt.Errorf("%s: pcap header: %w", path, err)
	}
	switch binary.LittleEndian.Uint32(pf.Header[:]) {
	case 0xa1b2c3d4:
		pf.Order = binary.LittleEndian
	case 0xa1b23c4d:
		pf.Order, pf.Nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		pf.Order = binary.BigEndian
	case 0x4d3cb2a1:
		pf.Order, pf.Nano = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("%s: not a classic pcap file", path)
	}
	if lt := pf.Order.Uint32(pf.Header[20:]); lt != 1 {
		return nil, fmt.Errorf("%s: link type %d, want Ethernet (1)", path, lt)
	}
	for n := 1; ; n++ {
		var rec PcapRecord
		if _, err := io.ReadFull(f, rec.Hdr[:]); err == io.EOF {
			break
		} else if err != nil {
			if partialOK {
				break
			}
			return pf, fmt.Errorf("%s: packet %d header: %w", path, n, err)
		}
		incl := int(pf.Order.Uint32(rec.Hdr[8:]))
		if incl > 1<<20 {
			return pf, fmt.Errorf("%s: packet %d: implausible length %d", path, n, incl)
		}
		rec.Data = make([]byte, incl)
		if _, err := io.ReadFull(f, rec.Data); err != nil {
			if partialOK {
				break
			}
			return pf, fmt.Errorf("%s: packet %d data: %w", path, n, err)
		}
		sec, frac := int64(pf.Order.Uint32(rec.Hdr[0:])), int64(pf.Order.Uint32(rec.Hdr[4:]))
		if !pf.Nano {
			frac *= 1000
		}
		rec.Time = time.Unix(sec, frac).UTC()
		pf.Records = append(pf.Records, rec)
	}
	return pf, nil
}

// Info decodes the records.
func (pf *PcapFile) Info() *CaptureInfo {
	info := &CaptureInfo{}
	for i, rec := range pf.Records {
		incl, orig := len(rec.Data), int(pf.Order.Uint32(rec.Hdr[12:]))
		info.Frames++
		if info.First.IsZero() {
			info.First = rec.Time
		}
		info.Last = rec.Time
		info.MaxCapLen = max(info.MaxCapLen, incl)
		info.MaxWireLen = max(info.MaxWireLen, orig)
		if p, ok := decodeTCP(rec.Data); ok {
			p.N, p.Time, p.CapLen, p.WireLen = i+1, rec.Time, incl, orig
			info.TCP = append(info.TCP, p)
		}
	}
	return info
}

// Write writes the file (header and records as they are).
func (pf *PcapFile) Write(path string) error {
	var b bytes.Buffer
	b.Write(pf.Header[:])
	for _, r := range pf.Records {
		b.Write(r.Hdr[:])
		b.Write(r.Data)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// MergePcaps merges several captures of the same format into one, in timestamp order
// (records with equal timestamps keep the order of the inputs).
func MergePcaps(out string, ins ...string) error {
	var merged *PcapFile
	for _, in := range ins {
		pf, err := ReadPcap(in, false)
		if err != nil {
			return err
		}
		if merged == nil {
			merged = pf
			continue
		}
		if pf.Nano != merged.Nano || pf.Order != merged.Order {
			return fmt.Errorf("%s: pcap format differs from %s", in, ins[0])
		}
		merged.Records = append(merged.Records, pf.Records...)
	}
	if merged == nil {
		return fmt.Errorf("nothing to merge")
	}
	sort.SliceStable(merged.Records, func(i, j int) bool { return merged.Records[i].Time.Before(merged.Records[j].Time) })
	return merged.Write(out)
}

// EditPcap rewrites path without the records numbered in remove (1-based) and, with
// duplicate, with every remaining record written twice in a row (the same bytes and time,
// as a SPAN port that mirrors both directions of a link can deliver them).
func EditPcap(path string, remove []int, duplicate bool) error {
	pf, err := ReadPcap(path, false)
	if err != nil {
		return err
	}
	drop := map[int]bool{}
	for _, n := range remove {
		if n < 1 || n > len(pf.Records) {
			return fmt.Errorf("%s: no packet %d to remove (%d packets)", path, n, len(pf.Records))
		}
		drop[n] = true
	}
	var recs []PcapRecord
	for i, r := range pf.Records {
		if drop[i+1] {
			continue
		}
		recs = append(recs, r)
		if duplicate {
			recs = append(recs, r)
		}
	}
	pf.Records = recs
	return pf.Write(path)
}

func decodeTCP(b []byte) (Packet, bool) {
	var p Packet
	if len(b) < 14 {
		return p, false
	}
	et := binary.BigEndian.Uint16(b[12:])
	b = b[14:]
	var src, dst netip.Addr
	var l4 []byte
	switch et {
	case 0x0800:
		if len(b) < 20 || b[0]>>4 != 4 {
			return p, false
		}
		ihl := int(b[0]&0x0f) * 4
		tot := int(binary.BigEndian.Uint16(b[2:]))
		if b[9] != 6 || ihl < 20 || tot > len(b) || tot < ihl {
			return p, false
		}
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		p.IPID = binary.BigEndian.Uint16(b[4:])
		l4 = b[ihl:tot]
	case 0x86dd:
		if len(b) < 40 || b[6] != 6 { // no extension headers in the lab
			return p, false
		}
		pl := int(binary.BigEndian.Uint16(b[4:]))
		if 40+pl > len(b) {
			return p, false
		}
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40 : 40+pl]
	default:
		return p, false
	}
	if len(l4) < 20 {
		return p, false
	}
	off := int(l4[12]>>4) * 4
	if off < 20 || off > len(l4) {
		return p, false
	}
	p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:]))
	p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:]))
	p.Seq = binary.BigEndian.Uint32(l4[4:])
	p.Ack = binary.BigEndian.Uint32(l4[8:])
	p.Flags = l4[13]
	p.Win = binary.BigEndian.Uint16(l4[14:])
	p.PayloadLen = len(l4) - off
	for o := l4[20:off]; len(o) > 0; {
		switch o[0] {
		case 0: // end of options
			o = nil
			continue
		case 1: // nop
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			break
		}
		if o[0] == 8 && o[1] == 10 {
			p.TSval, p.HasTS = binary.BigEndian.Uint32(o[2:]), true
		}
		o = o[o[1]:]
	}
	return p, true
}

// segKey identifies one IP packet carrying a TCP segment, whichever interface it was seen on
// (a forwarded packet differs only in TTL, checksum and MACs; a retransmission has another IP
// ID or timestamp).
type segKey struct {
	src, dst     netip.AddrPort
	seq, ack, ts uint32
	id           uint16
	flags        uint8
	payload      int
}

// UniqueSegments counts the TCP segments of a capture per 4-tuple, each IP packet once however
// often the capture holds it (SPAN duplicates).
func UniqueSegments(info *CaptureInfo) map[[2]netip.AddrPort]int {
	seen := map[segKey]bool{}
	out := map[[2]netip.AddrPort]int{}
	for _, p := range info.TCP {
		k := segKey{p.Src, p.Dst, p.Seq, p.Ack, p.TSval, p.IPID, p.Flags, p.PayloadLen}
		if seen[k] {
			continue
		}
		seen[k] = true
		a, b := p.Src, p.Dst
		if a.Compare(b) > 0 {
			a, b = b, a
		}
		out[[2]netip.AddrPort{a, b}]++
	}
	return out
}
