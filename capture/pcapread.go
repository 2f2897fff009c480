package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"
)

// pcapReader reads the records of a classic pcap file (both byte orders, µs and ns
// timestamps). It replaces pcapgo.Reader, whose per-record io.ReadFull calls through a
// bufio.Reader and copy into its own packet buffer cost several times what decoding the
// packet does: we read the stream into a buffer we own and hand out each packet as a
// sub-slice of it.
//
// Everything observable is as it was with pcapgo reading through in.br:
//
//   - The file header is checked as pcapgo checks it, with its error texts (pcapOpenError
//     rewords them).
//   - Records are accepted up to maxRecordLen captured bytes, whatever the snaplen
//     (pcapgo's limit is the larger of the snaplen, which we cap at maxRecordLen, and
//     256 KiB: always 256 KiB), and not when they claim more captured bytes than the packet
//     had. Either damage consumes the 16-byte header; a record cut short consumes what
//     there is, as io.ReadFull did, so consumed() - the record's start is how far reading
//     got, which pcapError relies on.
//   - Timestamps are computed exactly as pcapgo does, including its uint32 arithmetic.
//   - The underlying stream sees the very same Read calls: one of readBufferSize bytes
//     each time every byte read so far is spoken for and more are needed (that is what
//     bufio did once its buffer ran dry). So a read error (gzip damage, I/O) is met at the
//     same record as before, and in.cr.err is set, or not, at the same moment.
//     Except for a plain regular file (readSize): its reads are larger, which changes
//     nothing but their number. A read of a file returns all that was asked for, or what
//     there is up to its end or up to an I/O error (which the next read then returns), so
//     the bytes read, the offset where reading stops and the error met there are the same
//     whatever the size of the reads.
//
// The one difference: a reader that keeps returning nothing, and no error, made pcapgo
// (io.ReadFull over bufio) spin forever; we give up after 100 tries (io.ErrNoProgress).
type pcapReader struct {
	src        io.Reader // the stream after the file header: in.br, drained first
	buf        []byte    // buf[pos:end] is read and not yet consumed
	pos, end   int
	base       int64 // stream offset of buf[0]
	err        error // what ended src (io.EOF at the clean end); sticky
	big        bool  // big-endian file
	nanoFactor uint32
	linkType   uint32 // as the file header has it, FCS bits and all
	snaplen    uint32

	// The header of the record last read (or that failed).
	sec, frac, capLen, wireLen uint32

	// readSize is how much each read asks for once past plainReadFrom, if not
	// readBufferSize: more for a plain regular file, where each read(2) costs some
	// microseconds besides copying (a 2 GB capture is read in 8,000 calls of 256 KiB;
	// 1 MiB calls save 10% of the time the copy takes).
	readSize int

	touch byte // see next
}

// pcapBufferSize holds one record cut by the end of the buffer (at most 16 + maxRecordLen
// bytes) plus one more read of readBufferSize bytes: enough for any record.
const pcapBufferSize = 16 + maxRecordLen + readBufferSize

// plainReadSize is the readSize of a plain regular file. It is used only past
// plainReadFrom: the larger buffer it needs costs a garbage collection (~3 ms: the program's
// globals are scanned), which only a large capture repays.
const plainReadSize = 1 << 20

var plainReadFrom int64 = 256 << 20 // (a variable for the tests)

// step is how much each read asks for, and bufferSize the buffer that holds what fill needs
// plus one more read.
func (r *pcapReader) step() int {
	if r.readSize > 0 && r.base >= plainReadFrom {
		return r.readSize
	}
	return readBufferSize
}

func (r *pcapReader) bufferSize() int { return 16 + maxRecordLen + r.step() }

// pcapSmallBuffer is the buffer a capture starts with: enough for small ones.
const pcapSmallBuffer = 64 << 10

// newPcapReader reads and checks the 24-byte file header from src, which is at stream offset
// 0, as pcapgo.NewReader does; the records are then read from src too.
func newPcapReader(src io.Reader) (*pcapReader, error) {
	var h [24]byte
	if _, err := io.ReadFull(src, h[:]); err != nil {
		return nil, err
	}
	r := &pcapReader{src: src, base: 24}
	switch magic := binary.LittleEndian.Uint32(h[0:4]); magic {
	case 0xa1b23c4d:
		r.nanoFactor = 1
	case 0x4d3cb2a1:
		r.big, r.nanoFactor = true, 1
	case 0xa1b2c3d4:
		r.nanoFactor = 1000
	case 0xd4c3b2a1:
		r.big, r.nanoFactor = true, 1000
	default:
		return nil, fmt.Errorf("Unknown magic %x", magic) // pcapgo's wording, as all three
	}
	var order binary.ByteOrder = binary.LittleEndian
	if r.big {
		order = binary.BigEndian
	}
	if v := order.Uint16(h[4:6]); v != 2 {
		return nil, fmt.Errorf("Unknown major version %d", v)
	}
	if v := order.Uint16(h[6:8]); v != 4 {
		return nil, fmt.Errorf("Unknown minor version %d", v)
	}
	// The time zone (8:12) and sigfigs (12:16) are ignored, as everyone does.
	r.snaplen = order.Uint32(h[16:20])
	r.linkType = order.Uint32(h[20:24])
	return r, nil
}

// offset is the stream offset of the next record.
func (r *pcapReader) offset() int64 { return r.base + int64(r.pos) }

// u32 reads a field of a record header in the file's byte order.
func (r *pcapReader) u32(b []byte) uint32 {
	v := binary.LittleEndian.Uint32(b)
	if r.big {
		v = bits.ReverseBytes32(v)
	}
	return v
}

// next returns the next record's bytes: a sub-slice of the buffer, valid until the next
// call. Its header's fields are left in r.sec, r.frac, r.capLen and r.wireLen. At the clean
// end it returns io.EOF; a record cut short gives io.ErrUnexpectedEOF (or the stream's
// error), a damaged header errRecordTooLong or errRecordLonger.
func (r *pcapReader) next() ([]byte, error) {
	if r.end-r.pos < 16 {
		if err := r.fill(16); err != nil {
			r.capLen, r.wireLen = 0, 0
			return nil, err
		}
	}
	h := r.buf[r.pos : r.pos+16]
	r.sec, r.frac, r.capLen, r.wireLen = r.u32(h[0:4]), r.u32(h[4:8]), r.u32(h[8:12]), r.u32(h[12:16])
	if r.capLen > maxRecordLen {
		r.pos += 16
		return nil, errRecordTooLong
	}
	if r.capLen > r.wireLen {
		r.pos += 16
		return nil, errRecordLonger
	}
	n := 16 + int(r.capLen)
	if r.end-r.pos < n {
		if err := r.fill(n); err != nil {
			return nil, err
		}
	}
	data := r.buf[r.pos+16 : r.pos+n : r.pos+n]
	r.pos += n
	if r.pos+128 <= r.end {
		// Load the cache lines of the next record's first 128 bytes now (its header, and
		// the link, network and TCP headers of a usual packet), so that their misses
		// overlap the decoding of this one instead of stalling the next call: -2.5% wall
		// time on one core for a bulk transfer. The sum is stored only so that the loads
		// are made; nothing reads it.
		r.touch = r.buf[r.pos] + r.buf[r.pos+64] + r.buf[r.pos+127]
	}
	return data, nil
}

// timestamp is the time of the record last read, as pcapgo computes it: the fraction is
// scaled in uint32 (so a damaged µs field wraps), and time.Unix carries whole seconds out
// of it.
func (r *pcapReader) timestamp() time.Time {
	return time.Unix(int64(r.sec), int64(r.frac*r.nanoFactor)).UTC()
}

var (
	errRecordTooLong = errors.New("capture length exceeds snap length")
	errRecordLonger  = errors.New("capture length exceeds original packet length")
)

// fill reads until buf[pos:] holds n bytes. When the stream ends first it consumes what
// there is and returns what io.ReadFull would have: io.EOF if nothing at all was left,
// io.ErrUnexpectedEOF if some, or the stream's own error.
//
// It asks src for more only when every byte it gave so far is needed, as pcapgo did, and
// in.br then makes the same readBufferSize read from the stream whatever we ask of it (into
// our buffer when we ask that much, into its own when less). So the stream sees the same
// reads as before, whatever the size of our buffer. (With readSize, in.br passes each read
// on as it is, once drained.)
func (r *pcapReader) fill(n int) error {
	if r.pos > 0 {
		r.end = copy(r.buf, r.buf[r.pos:r.end])
		r.base += int64(r.pos)
		r.pos = 0
	}
	for idle := 0; r.end < n; {
		if r.err != nil {
			r.pos = r.end // consumed, as io.ReadFull would have
			if r.err == io.EOF && r.end > 0 {
				return io.ErrUnexpectedEOF
			}
			return r.err
		}
		// Small captures (and fuzz inputs) are read with a small buffer. Once it is full,
		// or the capture has outgrown it, the buffer is made big enough for whole reads.
		if r.buf == nil {
			r.buf = make([]byte, pcapSmallBuffer)
		}
		if size := r.bufferSize(); len(r.buf) < size && (r.end == len(r.buf) || r.base >= int64(len(r.buf))) {
			buf := make([]byte, size)
			copy(buf, r.buf[:r.end])
			r.buf = buf
		}
		m, err := r.src.Read(r.buf[r.end:min(len(r.buf), r.end+r.step())])
		r.end += m
		if err != nil {
			r.err = err
		} else if m == 0 {
			if idle++; idle >= 100 {
				r.err = io.ErrNoProgress
			}
		}
	}
	return nil
}
