package kernellab

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
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
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var gh [24]byte
	if _, err := io.ReadFull(f, gh[:]); err != nil {
		return nil, fmt.Errorf("%s: pcap header: %w", path, err)
	}
	var bo binary.ByteOrder
	nano := false
	switch binary.LittleEndian.Uint32(gh[:]) {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nano = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("%s: not a classic pcap file", path)
	}
	if lt := bo.Uint32(gh[20:]); lt != 1 {
		return nil, fmt.Errorf("%s: link type %d, want Ethernet (1)", path, lt)
	}
	info := &CaptureInfo{}
	var rh [16]byte
	for n := 1; ; n++ {
		if _, err := io.ReadFull(f, rh[:]); err == io.EOF {
			break
		} else if err != nil {
			return info, fmt.Errorf("%s: packet %d header: %w", path, n, err)
		}
		sec, frac := int64(bo.Uint32(rh[0:])), int64(bo.Uint32(rh[4:]))
		if !nano {
			frac *= 1000
		}
		ts := time.Unix(sec, frac).UTC()
		incl, orig := int(bo.Uint32(rh[8:])), int(bo.Uint32(rh[12:]))
		data := make([]byte, incl)
		if _, err := io.ReadFull(f, data); err != nil {
			return info, fmt.Errorf("%s: packet %d data: %w", path, n, err)
		}
		info.Frames++
		if info.First.IsZero() {
			info.First = ts
		}
		info.Last = ts
		info.MaxCapLen = max(info.MaxCapLen, incl)
		info.MaxWireLen = max(info.MaxWireLen, orig)
		if p, ok := decodeTCP(data); ok {
			p.N, p.Time, p.CapLen, p.WireLen = n, ts, incl, orig
			info.TCP = append(info.TCP, p)
		}
	}
	return info, nil
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
	return p, true
}
