package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/gopacket/gopacket/pcapgo"
)

// Config says how to read captures.
type Config struct {
	// Filter is a tcpdump (libpcap) filter expression applied to every packet; "" keeps all.
	Filter string
	// VerifyChecksums checks the IPv4 header and TCP checksums of packets captured whole and
	// marks segments that fail (Segment.BadChecksum). Off by default: captures taken on a
	// sending host show offloaded checksums as wrong.
	VerifyChecksums bool
	// Stdin is what the path "-" reads; nil means os.Stdin.
	Stdin io.Reader
	// NoDecap leaves TCP inside IP tunnels (IP-in-IP, GRE, VXLAN, Geneve, Teredo, GTP-U)
	// alone: only the outer packets are seen (as non-TCP).
	NoDecap bool
	// Count ends reading after this many packets the filter selected, TCP or not (tcpdump
	// -c); 0: no limit.
	Count uint64
	// Tap, if set, gets every packet the filter selected, as stored, before it is decoded
	// (tcpdump -r in -w out 'filter'; see Saver).
	Tap func(*Tapped)
}

// File magics: the first four bytes, as a string.
const (
	magicPcapMicroLE = "\xd4\xc3\xb2\xa1"
	magicPcapMicroBE = "\xa1\xb2\xc3\xd4"
	magicPcapNanoLE  = "\x4d\x3c\xb2\xa1"
	magicPcapNanoBE  = "\xa1\xb2\x3c\x4d"
	magicPcapng      = "\x0a\x0d\x0d\x0a"
)

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// OpenFiles opens capture files (pcap or pcapng, optionally gzip-compressed, told apart by
// their content; "-" is standard input) as one capture, merged in timestamp order. Every file
// is opened and its header checked before OpenFiles returns: an error names the file and says
// what to do. Damage found later, while reading, stops only that file (see Source.Errs).
// The Source is for one goroutine; Close it to release the files.
func OpenFiles(paths []string, cfg Config) (Source, error) {
	if len(paths) == 0 {
		return nil, errors.New("no capture file given; name one with -r FILE (or -r - to read standard input)")
	}
	if len(paths) > 1<<16 {
		return nil, fmt.Errorf("%d capture files given, more than the %d that can be merged; merge them in batches with mergecap first", len(paths), 1<<16)
	}
	s := &source{dec: decoder{verifyChecksums: cfg.VerifyChecksums, noDecap: cfg.NoDecap}, tap: cfg.Tap, count: cfg.Count}
	if cfg.Filter != "" {
		f, err := newFilter(cfg.Filter)
		if err != nil {
			return nil, err
		}
		s.filter = f
	}
	stdin := cfg.Stdin
	if stdin == nil {
		stdin = os.Stdin
	}
	stdinUsed := false
	for i, p := range paths {
		if p == "-" {
			if stdinUsed {
				s.Close()
				return nil, errors.New("-: standard input is given twice; it can be read only once")
			}
			stdinUsed = true
		}
		in, err := openInput(i, p, stdin)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.inputs = append(s.inputs, in)
	}
	return s, nil
}

// openInput opens one capture and reads its file header.
func openInput(index int, path string, stdin io.Reader) (*input, error) {
	in := &input{index: index, name: path}
	var r io.Reader
	if path == "-" {
		r = stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, openError(path, err)
		}
		if st, err := f.Stat(); err == nil && st.IsDir() {
			f.Close()
			return nil, fmt.Errorf("%s: is a directory; give a capture file (pcap or pcapng) inside it", path)
		}
		r = f
		in.closer = f
	}
	fail := func(err error) (*input, error) {
		in.close()
		return nil, err
	}

	// The block tracker must see the stream from its first byte, before we know the format.
	in.raw = &countingReader{r: r, blocks: &ngBlocks{}}
	in.cr, in.br = in.raw, bufio.NewReaderSize(in.raw, readBufferSize)
	magic, err := in.br.Peek(4)
	if err != nil && len(magic) == 0 {
		if err == io.EOF {
			return fail(fmt.Errorf("%s: the file is empty (0 bytes); the capture was never written (tcpdump -w stopped before writing? wrong file?)", displayName(path)))
		}
		return fail(fmt.Errorf("%s: cannot read: %v", displayName(path), err))
	}
	if isGzip(magic) {
		in.raw.blocks = nil
		gz, err := gzip.NewReader(in.br)
		if err != nil {
			return fail(fmt.Errorf("%s: starts like gzip data but its gzip header is damaged (%v); check the file with: gzip -t %s", displayName(path), err, path))
		}
		in.gzip = true
		in.cr = &countingReader{r: gz, blocks: &ngBlocks{}}
		in.br = bufio.NewReaderSize(in.cr, readBufferSize)
		magic, err = in.br.Peek(4)
		if err != nil && len(magic) < 4 {
			if in.cr.err != nil {
				return fail(fmt.Errorf("%s: the gzip compressed data is damaged (%v); check the file with: gzip -t %s", displayName(path), in.cr.err, path))
			}
			if len(magic) == 0 {
				return fail(fmt.Errorf("%s: gzip file that holds nothing; the capture was never written", displayName(path)))
			}
		}
	}
	if len(magic) < 4 {
		return fail(fmt.Errorf("%s: only %d bytes long, too short to be a capture; the file was cut short or is not a capture", displayName(path), len(magic)))
	}

	switch string(magic) {
	case magicPcapng:
		ng, err := pcapgo.NewNgReader(in.br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return fail(ngOpenError(in, err))
		}
		in.ng = ng
	case magicPcapMicroLE, magicPcapMicroBE, magicPcapNanoLE, magicPcapNanoBE:
		in.cr.blocks = nil
		in.raw.blocks = nil
		pr, err := newPcapReader(in.br)
		if err != nil {
			return fail(pcapOpenError(in, err))
		}
		// From here on consumed() is pr's: it is 24, as in.br has given pr the header.
		in.pcap = pr
		if f, ok := in.closer.(*os.File); ok && !in.gzip {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				pr.readSize = plainReadSize // see pcapReader.readSize
			}
		}
		// The link type is the low 16 bits of the header's field, as pcapgo took it
		// (layers.LinkType is 16 bits): the FCS length in the top bits is dropped.
		in.link = uint16(pr.linkType)
		in.snaplen = pr.snaplen
		if !linkSupported(in.link) {
			return fail(fmt.Errorf("%s: link type %d (%s) is not supported; tcpstate reads Ethernet, Linux cooked (SLL, SLL2), raw IP and BSD loopback captures: capture on an Ethernet or \"any\" interface (tcpdump -i any)", displayName(path), in.link, linkName(in.link)))
		}
	default:
		return fail(unknownFormatError(path, magic, in.gzip))
	}
	return in, nil
}

// displayName is how a path appears in messages.
func displayName(path string) string {
	if path == "-" {
		return "- (standard input)"
	}
	return path
}

// openError explains why a file could not be opened.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		wd, _ := os.Getwd()
		return fmt.Errorf("%s: no such file (looked in %s); check the path", path, wd)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: permission denied; make the file readable (e.g. chmod a+r, or run as its owner); tcpdump -w files are often written by root", path)
	}
	return fmt.Errorf("%s: cannot open: %v", path, err)
}

// unknownFormatError says what the file looks like, and what to do about it.
func unknownFormatError(path string, magic []byte, gz bool) error {
	hex := fmt.Sprintf("% x", magic[:4])
	name := displayName(path)
	inside := ""
	if gz {
		inside = "gzip-compressed data that is "
	}
	switch {
	case bytes.Equal(magic, []byte{0x34, 0xcd, 0xb2, 0xa1}), bytes.Equal(magic, []byte{0xa1, 0xb2, 0xcd, 0x34}):
		return fmt.Errorf("%s: %sa modified (Kuznetzov) pcap file, which is not supported; convert it with: editcap -F pcap %s out.pcap", name, inside, path)
	case bytes.HasPrefix(magic, []byte("snoo")):
		return fmt.Errorf("%s: %sa Solaris snoop capture, which is not supported; convert it with: editcap -F pcap %s out.pcap", name, inside, path)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return fmt.Errorf("%s: %sbzip2-compressed; decompress it first: bunzip2 -k %s", name, inside, path)
	case bytes.Equal(magic, []byte{0xfd, 0x37, 0x7a, 0x58}):
		return fmt.Errorf("%s: %sxz-compressed; decompress it first: unxz -k %s", name, inside, path)
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return fmt.Errorf("%s: %szstd-compressed; decompress it first: unzstd %s", name, inside, path)
	case bytes.HasPrefix(magic, []byte("PK\x03\x04")):
		return fmt.Errorf("%s: %sa zip archive; unzip it and give the capture inside", name, inside)
	}
	text := ""
	if printable(magic) {
		text = fmt.Sprintf(", text %q", string(magic))
	}
	return fmt.Errorf("%s: %snot a pcap or pcapng file (starts with bytes %s%s); give a capture written by tcpdump -w, Wireshark or tshark, or convert other formats with: editcap -F pcap %s out.pcap", name, inside, hex, text, path)
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// pcapOpenError explains a bad pcap file header.
func pcapOpenError(in *input, err error) error {
	name := displayName(in.name)
	if in.cr.err != nil {
		return fmt.Errorf("%s: cannot read the pcap file header: %v", name, in.cr.err)
	}
	if n := in.consumed(); n < 24 {
		return fmt.Errorf("%s: the file ends %d bytes into the 24-byte pcap file header; the capture is incomplete (was tcpdump stopped before it wrote anything?)", name, n)
	}
	msg := err.Error()
	if strings.Contains(msg, "version") {
		return fmt.Errorf("%s: unsupported pcap file version (%s; only 2.4 is read); re-save the file with Wireshark or: editcap -F pcap %s out.pcap", name, strings.ToLower(msg[:1])+msg[1:], in.name)
	}
	return fmt.Errorf("%s: bad pcap file header: %v", name, err)
}

// ngOpenError explains a bad pcapng section header.
func ngOpenError(in *input, err error) error {
	name := displayName(in.name)
	m, ok := in.cr.blocks.failedAt(in.consumed())
	switch {
	case in.cr.err != nil:
		return fmt.Errorf("%s: cannot read the pcapng section header: %v", name, in.cr.err)
	case ok && m.bad != "":
		return fmt.Errorf("%s: not a readable pcapng file: the %s", name, m.bad)
	case errors.Is(err, pcapgo.ErrNgVersionMismatch):
		return fmt.Errorf("%s: pcapng version %d.%d is not supported (only 1.0); re-save the file with Wireshark or: editcap -F pcapng %s out.pcapng", name, m.major, m.minor, in.name)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return fmt.Errorf("%s: the file ends inside its pcapng section header; the capture is incomplete", name)
	}
	return fmt.Errorf("%s: bad pcapng section header: %v", name, err)
}
