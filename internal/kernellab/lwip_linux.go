package kernellab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// lwIP, a third TCP implementation (Debian's liblwip-dev, the stack of many embedded devices):
// internal/lwiphost/lwiphost.c speaks the netstack host's protocol on a TAP device that the lab
// bridges with the namespace's veth. IPv4 only (see lwiphost.c).

// LwIPHostBinary compiles internal/lwiphost with cc against liblwip (or takes
// $TCPSTATE_LWIPHOST), cached under the user cache directory by the hash of its source.
func LwIPHostBinary(ctx context.Context) (string, error) {
	if p := os.Getenv("TCPSTATE_LWIPHOST"); p != "" {
		return p, nil
	}
	if _, err := os.Stat("/usr/include/lwip/lwip/tcp.h"); err != nil {
		return "", errors.New("liblwip-dev is not installed (make lab-deps installs it)")
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		return "", errors.New("no C compiler (cc) for internal/lwiphost")
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate internal/lwiphost (set TCPSTATE_LWIPHOST to a built binary)")
	}
	src := filepath.Join(filepath.Dir(self), "..", "lwiphost", "lwiphost.c")
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "tcpstate", "lwiphost-"+hex.EncodeToString(sum[:])[:16])
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	out, err := exec.CommandContext(ctx, cc, "-O2", "-Wall", "-I/usr/include/lwip", "-o", tmp, src, "-llwip").CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("cc internal/lwiphost: %v\n%s", err, out)
	}
	return bin, os.Rename(tmp, bin)
}

// StartLwIP hands the namespace's veth to an lwIP host: a TAP device lw0 and the veth are
// bridged (br0), the kernel's addresses leave the veth and IPv6 is off on all three, and
// lwIP owns addr behind the TAP device.
func StartLwIP(ctx context.Context, bin string, ns Netns, ifname string, addr netip.Prefix, gw netip.Addr) (Host, error) {
	for _, s := range [][]string{
		{"addr", "flush", "dev", ifname},
		{"tuntap", "add", "dev", "lw0", "mode", "tap"},
		{"link", "add", "br0", "type", "bridge"},
	} {
		if _, err := run(ctx, "ip", append([]string{"-n", ns.Name}, s...)...); err != nil {
			return nil, err
		}
	}
	for _, ifn := range []string{ifname, "lw0", "br0"} {
		if err := ns.Sysctl("net.ipv6.conf."+ifn+".disable_ipv6", "1"); err != nil {
			return nil, err
		}
	}
	for _, s := range [][]string{
		{"link", "set", ifname, "master", "br0"},
		{"link", "set", "lw0", "master", "br0"},
		{"link", "set", "lw0", "up"},
		{"link", "set", "br0", "up"},
	} {
		if _, err := run(ctx, "ip", append([]string{"-n", ns.Name}, s...)...); err != nil {
			return nil, err
		}
	}
	cmd := ns.Command(context.Background(), "env", "PRECONFIGURED_TAPIF=lw0", bin, "-addr", addr.String(), "-gw", gw.String())
	return startHost(ctx, StackLwIP, ns, cmd)
}
