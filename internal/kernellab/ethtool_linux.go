package kernellab

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"
)

// Legacy ethtool ioctls (include/uapi/linux/ethtool.h); no ethtool binary is needed.
const (
	siocEthtool    = 0x8946
	ethtoolGTXCSUM = 0x16
	ethtoolSTXCSUM = 0x17
	ethtoolGSG     = 0x18
	ethtoolSSG     = 0x19
	ethtoolGTSO    = 0x1e
	ethtoolSTSO    = 0x1f
	ethtoolGGSO    = 0x23
	ethtoolSGSO    = 0x24
	ethtoolGGRO    = 0x2b
	ethtoolSGRO    = 0x2c
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

type ifreqData struct {
	name [16]byte
	data uintptr
	_    [16]byte
}

func ethtoolIoctl(fd int, ifname string, v *ethtoolValue) error {
	ifr := new(ifreqData)
	copy(ifr.name[:15], ifname)
	ifr.data = uintptr(unsafe.Pointer(v))
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), siocEthtool, uintptr(unsafe.Pointer(ifr)))
	runtime.KeepAlive(v)
	runtime.KeepAlive(ifr)
	if e != 0 {
		return e
	}
	return nil
}

// DisableOffloads turns off TSO, GSO, GRO, scatter-gather and TX checksum offload on an
// interface of the namespace, so that what tcpdump sees on the veth are wire-sized packets
// with correct checksums. It returns the settings read back (1 = still on).
func (n Netns) DisableOffloads(ifname string) (map[string]uint32, error) {
	after := map[string]uint32{}
	err := n.Do(func() error {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		// Order matters: TSO/GSO depend on SG and checksumming.
		for _, c := range []uint32{ethtoolSGRO, ethtoolSTSO, ethtoolSGSO, ethtoolSSG, ethtoolSTXCSUM} {
			if err := ethtoolIoctl(fd, ifname, &ethtoolValue{cmd: c}); err != nil {
				return fmt.Errorf("ethtool cmd %#x on %s: %w", c, ifname, err)
			}
		}
		for name, c := range map[string]uint32{"tx-checksum": ethtoolGTXCSUM, "sg": ethtoolGSG, "tso": ethtoolGTSO, "gso": ethtoolGGSO, "gro": ethtoolGGRO} {
			v := &ethtoolValue{cmd: c}
			if err := ethtoolIoctl(fd, ifname, v); err != nil {
				return fmt.Errorf("ethtool get %s on %s: %w", name, ifname, err)
			}
			after[name] = v.data
		}
		return nil
	})
	return after, err
}
