package capture

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Tapped is one packet read from a file that the filter selected (TCP or not), as it was
// stored, handed to Config.Tap before it is decoded: what tcpdump -r in -w out 'filter' writes.
type Tapped struct {
	File    int    // input index
	Packet  uint64 // record number in that file (1-based), as Segment.Packet
	Time    time.Time
	Link    uint16
	Data    []byte // valid only during the call
	WireLen int
}

// tapped counts a packet the filter selected (for Config.Count) and hands it to Config.Tap.
func (s *source) tapped(in *input, link uint16, data []byte) {
	s.selected++
	if s.tap != nil {
		s.tap(&Tapped{File: in.index, Packet: in.records, Time: in.timestamp(), Link: link, Data: data, WireLen: in.wireLen})
	}
}

// countReached: -c COUNT packets were selected; every input ends there.
func (s *source) countReached() bool { return s.count > 0 && s.selected >= s.count }

// Saver writes packets to a capture file: pcap with nanosecond timestamps (what tcpdump -w
// writes), or pcapng when comments are to be written with the packets (Wireshark shows them as
// frame.comment) or the packets come from links of different types.
type Saver struct {
	buf  *bufio.Writer
	ng   bool
	pcap *pcapgo.Writer
	ngw  *pcapgo.NgWriter
	ifs  map[uint16]int // pcapng: interface index per link type
	link uint16         // pcap: the file's link type, from the first packet
	err  error
}

// NewSaver writes to w; ng asks for pcapng. Nothing is written before the first packet (the
// file header needs its link type): Close writes an empty capture's header.
func NewSaver(w io.Writer, ng bool) *Saver {
	return &Saver{buf: bufio.NewWriterSize(w, 256<<10), ng: ng}
}

// Write writes one packet, with comments (pcapng only).
func (s *Saver) Write(p *Tapped, comments []string) error {
	if s.err != nil {
		return s.err
	}
	if err := s.start(p.Link); err != nil {
		return err
	}
	ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: max(p.WireLen, len(p.Data))}
	if !s.ng {
		if p.Link != s.link {
			s.err = fmt.Errorf("the inputs mix link types %d and %d, which one pcap file cannot hold: add --annotate to write pcapng", s.link, p.Link)
			return s.err
		}
		s.err = s.pcap.WritePacket(ci, p.Data)
		return s.err
	}
	id, ok := s.ifs[p.Link]
	if !ok {
		if id, s.err = s.ngw.AddInterface(pcapgo.NgInterface{LinkType: layers.LinkType(p.Link), SnapLength: maxRecordLen}); s.err != nil {
			return s.err
		}
		s.ifs[p.Link] = id
	}
	ci.InterfaceIndex = id
	s.err = s.ngw.WritePacketWithOptions(ci, p.Data, pcapgo.NgPacketOptions{Comments: comments})
	return s.err
}

func (s *Saver) start(link uint16) error {
	if s.pcap != nil || s.ngw != nil {
		return nil
	}
	s.link = link
	if !s.ng {
		s.pcap = pcapgo.NewWriterNanos(s.buf)
		s.err = s.pcap.WriteFileHeader(maxRecordLen, layers.LinkType(link))
		return s.err
	}
	s.ngw, s.err = pcapgo.NewNgWriterInterface(s.buf,
		pcapgo.NgInterface{LinkType: layers.LinkType(link), SnapLength: maxRecordLen},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "tcpstate"}})
	s.ifs = map[uint16]int{link: 0}
	return s.err
}

// Close writes what is buffered (and, if no packet came, an Ethernet file header, so that
// the file is a valid empty capture). It does not close w.
func (s *Saver) Close() error {
	if s.err == nil {
		s.start(linkEthernet)
	}
	if s.ngw != nil && s.err == nil {
		s.err = s.ngw.Flush()
	}
	if err := s.buf.Flush(); s.err == nil {
		s.err = err
	}
	return s.err
}
