package kernellab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

const netnsDir = "/var/run/netns" // where `ip netns add` pins named namespaces

// Netns is a named network namespace created with `ip netns add`.
type Netns struct{ Name string }

// randomPrefix returns "tsl" + 6 random hex digits, unique enough for parallel runs.
func randomPrefix() string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("tsl%06x", os.Getpid()&0xffffff)
	}
	return "tsl" + hex.EncodeToString(b[:])
}

func setns(fd uintptr) error {
	if sysSetns == 0 {
		return fmt.Errorf("setns: unsupported architecture %s", runtime.GOARCH)
	}
	if _, _, e := syscall.RawSyscall(sysSetns, fd, syscall.CLONE_NEWNET, 0); e != 0 {
		return e
	}
	return nil
}

// Do runs f on an OS thread that has entered the namespace. Sockets created by f belong to
// the namespace for life and may be used from any goroutine afterwards. f must not start
// goroutines that expect to be in the namespace. If the thread cannot return to its original
// namespace it is discarded (the goroutine exits still locked, and the runtime kills the thread).
func (n Netns) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join(netnsDir, n.Name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := setns(target.Fd()); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		ferr := f()
		if err := setns(orig.Fd()); err != nil {
			errc <- fmt.Errorf("setns back from %s: %w", n.Name, err)
			return // thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Command returns a command that runs inside the namespace (via `ip netns exec`).
func (n Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Run runs a command inside the namespace and returns its standard output.
func (n Netns) Run(ctx context.Context, name string, args ...string) (string, error) {
	return runCmd(n.Command(ctx, name, args...))
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return runCmd(cmd)
}

func runCmd(cmd *exec.Cmd) (string, error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Sysctl sets a sysctl inside the namespace (path relative to /proc/sys, dotted or slashed).
func (n Netns) Sysctl(key, value string) error {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	return n.Do(func() error {
		// /proc/sys/net resolves to the namespace of the opening thread.
		return os.WriteFile(p, []byte(value), 0o644)
	})
}
