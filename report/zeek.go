package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/tracker"
)

// TunnelName is the word used for a tunnel kind in the table, JSON and Zeek output.
func TunnelName(k capture.TunnelKind) string {
	return [...]string{"", "ip-in-ip", "gre", "vxlan", "geneve", "teredo", "gtp-u", "mpls"}[min(int(k), 7)]
}

var zeekFields = []string{"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration",
	"orig_bytes", "resp_bytes", "conn_state", "missed_bytes", "history", "orig_pkts", "orig_ip_bytes",
	"resp_pkts", "resp_ip_bytes"}

var zeekTypes = []string{"time", "string", "addr", "port", "addr", "port", "enum", "interval", "count", "count",
	"string", "count", "string", "count", "count", "count", "count"}

// zeekRow is one conn.log row, Zeek's originator first.
func zeekRow(c *tracker.Conn) []any {
	o := c.Zeek.Orig()
	r := 1 - o
	oe, re := &c.Client, &c.Server
	if o == tracker.ServerSide {
		oe, re = &c.Server, &c.Client
	}
	ts := float64(c.FirstSeen.UnixNano()) / 1e9
	dur := c.LastSeen.Sub(c.FirstSeen).Seconds()
	missed := c.Dir[0].MissedBytes + c.Dir[1].MissedBytes
	return []any{ts, fmt.Sprintf("C%d", c.ID), oe.Addr.Addr().String(), oe.Addr.Port(), re.Addr.Addr().String(), re.Addr.Port(),
		"tcp", dur, c.Dir[o].Bytes, c.Dir[r].Bytes, c.Zeek.ConnState(), missed, c.Zeek.History,
		c.DirPackets[o], c.DirIPBytes[o], c.DirPackets[r], c.DirIPBytes[r]}
}

// WriteZeek writes a Zeek conn.log (TSV with its #fields header).
func WriteZeek(w io.Writer, conns []*tracker.Conn) error {
	var b strings.Builder
	b.WriteString("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n")
	b.WriteString("#fields\t" + strings.Join(zeekFields, "\t") + "\n")
	b.WriteString("#types\t" + strings.Join(zeekTypes, "\t") + "\n")
	for _, c := range conns {
		row := zeekRow(c)
		for i, v := range row {
			if i > 0 {
				b.WriteByte('\t')
			}
			switch x := v.(type) {
			case float64:
				if i == 0 {
					fmt.Fprintf(&b, "%.6f", x)
				} else {
					fmt.Fprintf(&b, "%.6f", x)
				}
			case string:
				if x == "" {
					x = "-"
				}
				b.WriteString(x)
			default:
				fmt.Fprint(&b, x)
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteZeekJSON writes the same rows as Zeek's JSON logs do.
func WriteZeekJSON(w io.Writer, conns []*tracker.Conn) error {
	enc := json.NewEncoder(w)
	for _, c := range conns {
		row := zeekRow(c)
		m := make(map[string]any, len(row))
		for i, v := range row {
			m[zeekFields[i]] = v
		}
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	return nil
}
