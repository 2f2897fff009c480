package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// maxRecordLen is the largest captured length a record may claim: libpcap's MAXIMUM_SNAPLEN.
// tcpdump reports a larger one as damage ("bigger than maximum of 262144"), and so do we: the
// length is read from the file, and trusting it would let a few damaged bytes make us buffer
// gigabytes before finding out the data is not there.
const maxRecordLen = 262144

// readBufferSize is the buffer between the file and the readers (pcapgo's for pcapng), and
// so the size of each read from the file.
const readBufferSize = 256 << 10

// countingReader counts the bytes read through it. For pcapng it also shows them to the block
// tracker, and it remembers the first real error of the reader below (gzip damage, I/O), which
// pcapgo may pass on as a mere unexpected EOF.
type countingReader struct {
	r      io.Reader
	n      int64
	blocks *ngBlocks
	err    error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		if c.blocks != nil {
			c.blocks.feed(p[:n], c.n)
		}
		c.n += int64(n)
	}
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// input is one opened capture file and where reading it has got to.
type input struct {
	index  int
	name   string    // the path as given; "-" is stdin
	closer io.Closer // the open file, nil for stdin

	raw  *countingReader // the file as stored
	cr   *countingReader // the capture stream (raw, or what gzip inflates from it)
	br   *bufio.Reader   // the buffer the readers read through: cr's count minus what it holds is exact
	gzip bool

	pcap    *pcapReader      // one of pcap
	ng      *pcapgo.NgReader // and ng is set
	link    uint16           // pcap: the file's link type
	snaplen uint32           // pcap: the file header's snapshot length

	tsBinary []tsUnit // pcapng: per interface of the current section, as far as seen

	records uint64    // records read so far
	wireLen int       // the wire length of the record read last
	ts      time.Time // pcapng: the time of the record read last
	recOff  int64     // stream offset of the record last read, or of the one that failed

	head  *Segment   // the next segment this input will deliver, when pending: in slots or lent
	slots [2]Segment // head, and the one handed out before it (NextRef's, still in use)
	done  bool
}

// consumed is the stream offset up to which the reader has read: past the last record it
// returned, or as far as it got into a damaged one.
func (in *input) consumed() int64 {
	if in.pcap != nil {
		return in.pcap.offset()
	}
	return in.cr.n - int64(in.br.Buffered())
}

// progress is how far into the file as stored reading has got.
func (in *input) progress() int64 {
	if in.gzip {
		return in.raw.n
	}
	return in.consumed()
}

// read returns the next record: its bytes (valid until the next call) and link type; its
// wire length is left in in.wireLen, and in.timestamp() is its time. At the clean end of the
// file it returns io.EOF; on damage, a descriptive error, with in.recOff set to where the bad
// record or block starts.
func (in *input) read() ([]byte, uint16, error) {
	if in.pcap != nil {
		start := in.pcap.offset()
		in.recOff = start
		data, err := in.pcap.next()
		if err != nil {
			return nil, 0, in.pcapError(err, int(in.pcap.capLen), int(in.pcap.wireLen), start)
		}
		in.wireLen = int(in.pcap.wireLen)
		return data, in.link, nil
	}
	start := in.consumed()
	data, ci, err := in.ng.ZeroCopyReadPacketData()
	if err != nil {
		if err == io.EOF && in.cr.err == nil {
			return nil, 0, io.EOF
		}
		return nil, 0, in.ngError(err, start)
	}
	in.recOff = start
	m, ok, newSection := in.cr.blocks.packetAt()
	if newSection {
		in.tsBinary = in.tsBinary[:0]
	}
	if ok {
		in.recOff = m.off
		if m.typ != ngSPB {
			in.fixBinaryTime(&ci, m)
		}
	}
	link := uint16(linkEthernet)
	if len(ci.AncillaryData) > 0 {
		if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
			link = uint16(lt)
		}
	}
	in.wireLen = ci.Length
	in.ts = ci.Timestamp
	return data, link, nil
}

// timestamp is the time of the record read last.
func (in *input) timestamp() time.Time {
	if in.pcap != nil {
		return in.pcap.timestamp()
	}
	return in.ts
}

// fixBinaryTime recomputes the timestamp of a packet from an interface whose if_tsresol is a
// power of two: pcapgo scales those fractions with an integer factor (1e9 / 2^n, truncated),
// which is off by up to 0.07% (half a millisecond at 2^-20). Decimal resolutions are exact.
func (in *input) fixBinaryTime(ci *gopacket.CaptureInfo, m ngMark) {
	i := ci.InterfaceIndex
	for len(in.tsBinary) <= i {
		iface, err := in.ng.Interface(len(in.tsBinary))
		if err != nil {
			return
		}
		exp := uint8(0)
		if iface.TimestampResolution.Binary() {
			exp = iface.TimestampResolution.Exponent()
		}
		in.tsBinary = append(in.tsBinary, tsUnit{exp: exp, offset: iface.TimestampOffset})
	}
	u := in.tsBinary[i]
	if u.exp == 0 || u.exp > 63 {
		return
	}
	frac := m.ts & (1<<u.exp - 1)
	hi, lo := bits.Mul64(frac, 1e9)
	ns := hi<<(64-u.exp) | lo>>u.exp
	ci.Timestamp = time.Unix(int64(m.ts>>u.exp+u.offset), int64(ns)).UTC()
}

// tsUnit is how an interface's timestamps are scaled, when its resolution is binary.
type tsUnit struct {
	exp    uint8 // the resolution is 2^-exp seconds; 0 for decimal resolutions
	offset uint64
}

// pcapError explains why a pcap record could not be read. pcapReader reads a record as a
// 16-byte header and then the captured bytes; how far it got tells what went wrong.
// capLen and wireLen are the record header's lengths, 0 when the header could not be read.
func (in *input) pcapError(err error, capLen, wireLen int, start int64) error {
	got := in.consumed() - start
	if in.cr.err != nil && in.gzip {
		return fmt.Errorf("the gzip compressed data is damaged or cut short (%v); decompress what is readable with: zcat %s > out.pcap", in.cr.err, in.name)
	}
	if in.cr.err != nil {
		return fmt.Errorf("read error: %w", in.cr.err)
	}
	switch {
	case got == 0 && err == io.EOF:
		return io.EOF
	case got < 16:
		return fmt.Errorf("the file ends %d bytes into a 16-byte record header (truncated dump file: the capture was cut short, e.g. tcpdump killed or a copy interrupted): %w", got, io.ErrUnexpectedEOF)
	case capLen > maxRecordLen || capLen < 0:
		return fmt.Errorf("the record header claims a %d-byte packet, bigger than the maximum of %d: the file is corrupt from here on", uint32(capLen), maxRecordLen)
	case capLen > wireLen:
		return fmt.Errorf("the record header claims %d captured bytes of a %d-byte packet (more than it had): the file is corrupt from here on", capLen, wireLen)
	case got < 16+int64(capLen):
		return fmt.Errorf("the file ends %d bytes into a packet of %d captured bytes (truncated dump file: the capture was cut short): %w", got-16, capLen, io.ErrUnexpectedEOF)
	}
	return err
}

// ngError explains why pcapng reading stopped, at the block where it did.
func (in *input) ngError(err error, start int64) error {
	m, ok := in.cr.blocks.failedAt(in.consumed())
	in.recOff = start
	if ok {
		in.recOff = m.off
	}
	switch {
	case in.cr.err != nil && in.gzip:
		return fmt.Errorf("the gzip compressed data is damaged or cut short (%v); decompress what is readable with: zcat %s > out.pcapng", in.cr.err, in.name)
	case in.cr.err != nil:
		return fmt.Errorf("read error: %w", in.cr.err)
	case ok && m.bad != "":
		return fmt.Errorf("the %s: the file is corrupt from here on", m.bad)
	case errors.Is(err, pcapgo.ErrNgVersionMismatch) && ok && m.typ == ngSHB:
		return fmt.Errorf("a new section starts here with pcapng version %d.%d, which is not supported (only 1.0); re-save the file with Wireshark or: editcap -F pcapng %s out.pcapng", m.major, m.minor, in.name)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		what := "a block"
		if ok && m.typ != 0xffffffff {
			what = "a " + ngBlockName(m.typ)
		}
		return fmt.Errorf("the file ends inside %s (truncated dump file: the capture was cut short): %w", what, io.ErrUnexpectedEOF)
	}
	what := "block"
	if ok && m.typ != 0xffffffff {
		what = ngBlockName(m.typ)
	}
	return fmt.Errorf("damaged pcapng %s (%v): the file is corrupt from here on", what, err)
}

// close releases the file. It is safe to call twice.
func (in *input) close() error {
	in.done = true
	if in.closer == nil {
		return nil
	}
	err := in.closer.Close()
	in.closer = nil
	return err
}
