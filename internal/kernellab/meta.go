package kernellab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Files of one recorded scenario directory.
const (
	CaptureFile      = "capture.pcap"
	SSClientFile     = "ss-client.txt"
	SSServerFile     = "ss-server.txt"
	SSClientTimers   = "ss-client-timers.txt"
	SSServerTimers   = "ss-server-timers.txt"
	ScenarioMetaFile = "scenario.json"
)

// ExpectedConn is what a scenario intends the kernel to show for one connection. The recorder
// checks the ss snapshot against it; the agreement harness does not use it (ss is the truth).
type ExpectedConn struct {
	What        string `json:"what"`
	Client      string `json:"client"` // ip:port, port 0 when the kernel freed it before we looked
	Server      string `json:"server"`
	ClientState string `json:"client_state"` // canonical names
	ServerState string `json:"server_state"`
}

// ScenarioMeta is scenario.json.
type ScenarioMeta struct {
	Name          string         `json:"name"`
	Description   string         `json:"description"`
	ClientAddrs   []string       `json:"client_addrs"`
	ServerAddrs   []string       `json:"server_addrs"`
	Tap           string         `json:"tap"`
	CaptureStart  string         `json:"capture_start"`
	CaptureEnd    string         `json:"capture_end"`
	FirstPacket   string         `json:"first_packet,omitempty"`
	LastPacket    string         `json:"last_packet,omitempty"`
	Snapshot      string         `json:"snapshot"`
	SnapshotAfter string         `json:"snapshot_after_last_packet,omitempty"`
	Frames        int            `json:"frames"`
	TCPSegments   int            `json:"tcp_segments"`
	MaxFrameLen   int            `json:"max_frame_len"`
	Kernel        string         `json:"kernel,omitempty"`
	TcpdumpStats  string         `json:"tcpdump_stats,omitempty"`
	Expect        []ExpectedConn `json:"expect"`
	Snapshots     []AtSnapshot   `json:"snapshots,omitempty"`
	Edit          *EditMeta      `json:"capture_edit,omitempty"`
	Slow          bool           `json:"slow,omitempty"`
	// FinalAt: the snapshot was taken after timers ran out, long after the last packet; the
	// tool is held to it with --at Snapshot rather than at the end of the capture.
	FinalAt bool `json:"final_at,omitempty"`
	// Duplicates: every packet is in the capture twice (SPAN); the tool must count each once.
	Duplicates bool              `json:"duplicates,omitempty"`
	Notes      []string          `json:"notes,omitempty"`
	Offloads   map[string]string `json:"offloads,omitempty"`
	// Stacks: which TCP implementation ran on each end (absent: the Linux kernel on both).
	Stacks *Stacks `json:"stacks,omitempty"`
	// ToolArgs: what the tool must be told to be held to this truth (e.g. --os for a host
	// whose timers were tuned away from its stack's defaults).
	ToolArgs []string `json:"tool_args,omitempty"`
}

// Stacks names the TCP implementation of each end: "linux" (the kernel) or "netstack"
// (gVisor's netstack, internal/netstackhost).
type Stacks struct {
	Client string `json:"client"`
	Server string `json:"server"`
	// Tuning: settings a netstack end ran with that are not netstack's defaults.
	Tuning string `json:"tuning,omitempty"`
}

// AtSnapshot is an ss snapshot of both ends taken during the scenario, while nothing was in
// flight: the truth for `tcpstate --at Time`.
type AtSnapshot struct {
	N           int            `json:"n"`
	Label       string         `json:"label"`
	Time        string         `json:"time"`    // RFC 3339 ns: just before the first ss ran; pass it to --at
	SSDone      string         `json:"ss_done"` // when both ss had returned (no packet in between)
	ClientFile  string         `json:"client_file"`
	ServerFile  string         `json:"server_file"`
	QuietBefore string         `json:"quiet_before"` // time since the last TCP packet on the tap at Time
	Expect      []ExpectedConn `json:"expect"`
}

// SnapshotFiles returns the ss file names of at-snapshot n.
func SnapshotFiles(n int) (client, server string) {
	return fmt.Sprintf("ss-client@%d.txt", n), fmt.Sprintf("ss-server@%d.txt", n)
}

// EditMeta describes how the committed capture differs from what the tap recorded (losses
// before the tap, SPAN duplicates): the kernel truth is that of the real traffic.
type EditMeta struct {
	What           string   `json:"what"`
	RemovedPackets []int    `json:"removed_packets,omitempty"` // numbers in the original capture
	Removed        []string `json:"removed,omitempty"`         // what they were
	Duplicated     bool     `json:"duplicated,omitempty"`
	OriginalFrames int      `json:"original_frames"`
}

// ReadMeta reads dir/scenario.json.
func ReadMeta(dir string) (*ScenarioMeta, error) {
	b, err := os.ReadFile(filepath.Join(dir, ScenarioMetaFile))
	if err != nil {
		return nil, err
	}
	var m ScenarioMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ScenarioMetaFile), err)
	}
	return &m, nil
}

// ScenarioDirs lists the recorded scenario directories under root (those with a capture).
func ScenarioDirs(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") { // .name.tmp-*: a recording in progress
			continue
		}
		d := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(d, CaptureFile)); err == nil {
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	return dirs, nil
}

// ReadSSFile parses one ss snapshot file.
func ReadSSFile(path string) ([]SSRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := ParseSS(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}
