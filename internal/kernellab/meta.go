package kernellab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
	Name          string            `json:"name"`
	Description   string            `json:"description"`
	ClientAddrs   []string          `json:"client_addrs"`
	ServerAddrs   []string          `json:"server_addrs"`
	Tap           string            `json:"tap"`
	CaptureStart  string            `json:"capture_start"`
	CaptureEnd    string            `json:"capture_end"`
	FirstPacket   string            `json:"first_packet,omitempty"`
	LastPacket    string            `json:"last_packet,omitempty"`
	Snapshot      string            `json:"snapshot"`
	SnapshotAfter string            `json:"snapshot_after_last_packet,omitempty"`
	Frames        int               `json:"frames"`
	TCPSegments   int               `json:"tcp_segments"`
	MaxFrameLen   int               `json:"max_frame_len"`
	Kernel        string            `json:"kernel,omitempty"`
	TcpdumpStats  string            `json:"tcpdump_stats,omitempty"`
	Expect        []ExpectedConn    `json:"expect"`
	Notes         []string          `json:"notes,omitempty"`
	Offloads      map[string]string `json:"offloads,omitempty"`
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
		if !e.IsDir() {
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
