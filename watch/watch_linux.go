package watch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"git.timemachine.center/timemachine/instance-sync/scope"
)

// Supported reports whether this system has a change watcher.
const Supported = true

// events are the changes that can alter a walk: contents, size, mode and
// mtime (IN_ATTRIB), and entries appearing, vanishing or renamed. Reads
// (restic's backup) are not among them.
const events = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_CREATE |
	unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_MOVED_FROM |
	unix.IN_MOVED_TO | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW

// lost are events after which the watcher no longer sees everything: a
// watched folder gone or moved, or the kernel's queue overflowing.
const lost = unix.IN_Q_OVERFLOW | unix.IN_IGNORED | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_UNMOUNT

type watcher struct {
	fd    int
	pack  string
	scope scope.Scope
	buf   []byte

	mu   sync.Mutex
	dirs map[int32][]string // watch descriptor -> folders (relative)

	changed bool
}

// Serve runs the watcher of pack until something in scope changes (it
// returns ErrChanged), a client sends Quit, maxAge passes, or pack is
// deleted or moved away (ErrChanged). It first watches every folder of
// the scope, then walks it: unless the walk's digest is base.Digest, the
// files already differ from the last sync and it returns ErrChanged at
// once. Only then does it answer clients.
func Serve(pack string, sc scope.Scope, base Base, maxAge time.Duration) error {
	h, err := homeOf(pack)
	if err != nil {
		return err
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	defer unix.Close(fd)
	w := &watcher{fd: fd, pack: pack, scope: sc, buf: make([]byte, 64<<10), dirs: map[int32][]string{}}
	for _, p := range sc.Parents() {
		err := w.add(p)
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			return err
		}
	}
	m, _, err := sc.WalkFiles(pack, w.add)
	if err != nil {
		return err
	}
	if m.Digest() != base.Digest || w.drain() {
		return ErrChanged
	}
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrUnix{Name: socketName(pack)}); err != nil {
		return fmt.Errorf("another watcher runs for %s: %w", pack, err)
	}
	if err := unix.Listen(ln, 8); err != nil {
		return err
	}
	deadline := time.Now().Add(maxAge)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		if err := h.gone(); err != nil {
			return err
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(ln), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, int(min(left, checkEvery).Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if fds[0].Revents != 0 && w.drain() {
			return ErrChanged
		}
		if fds[1].Revents != 0 {
			if done, err := w.answer(ln, base); done {
				return err
			}
		}
	}
}

// add watches the folder rel. WalkFiles calls it from several goroutines.
func (w *watcher) add(rel string) error {
	wd, err := unix.InotifyAddWatch(w.fd, filepath.Join(w.pack, filepath.FromSlash(rel)), events)
	if err != nil {
		return &os.PathError{Op: "inotify_add_watch", Path: rel, Err: err}
	}
	w.mu.Lock()
	w.dirs[int32(wd)] = append(w.dirs[int32(wd)], rel)
	w.mu.Unlock()
	return nil
}

// drain reads every event queued so far and reports whether anything in
// scope changed (since the watcher started). A change made before the
// call returned is in the queue: inotify queues an event as part of the
// system call that made the change.
func (w *watcher) drain() bool {
	for !w.changed {
		n, err := unix.Read(w.fd, w.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n <= 0 {
			break // EAGAIN: the queue is empty
		}
		b := w.buf[:n]
		for len(b) >= unix.SizeofInotifyEvent {
			wd := int32(binary.NativeEndian.Uint32(b[0:]))
			mask := binary.NativeEndian.Uint32(b[4:])
			nameLen := int(binary.NativeEndian.Uint32(b[12:]))
			if unix.SizeofInotifyEvent+nameLen > len(b) {
				w.changed = true // a truncated event: assume the worst
				break
			}
			name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:unix.SizeofInotifyEvent+nameLen]), "\x00")
			b = b[unix.SizeofInotifyEvent+nameLen:]
			if w.matters(wd, mask, name) {
				w.changed = true
			}
		}
	}
	return w.changed
}

// matters reports whether one event can change what a walk records.
func (w *watcher) matters(wd int32, mask uint32, name string) bool {
	if mask&lost != 0 {
		return true
	}
	if name == "" {
		return false // the watched folder's own attributes: not recorded
	}
	w.mu.Lock()
	dirs := w.dirs[wd]
	w.mu.Unlock()
	if len(dirs) == 0 {
		return true
	}
	for _, dir := range dirs {
		rel := name
		if dir != "" {
			rel = dir + "/" + name
		}
		if w.scope.Affects(rel, mask&unix.IN_ISDIR != 0) {
			return true
		}
	}
	return false
}

// answer serves one client: it reads the request, drains the events and
// replies. done is true when the watcher should exit.
func (w *watcher) answer(ln int, base Base) (done bool, err error) {
	c, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		return false, nil // EAGAIN or a client that went away
	}
	defer unix.Close(c)
	if !sameUser(c) {
		return false, nil
	}
	timeouts(c, 2*time.Second)
	var req [1]byte
	if n, err := unix.Read(c, req[:]); n != 1 || err != nil {
		return false, nil
	}
	changed := w.drain()
	_, _ = unix.Write(c, []byte(reply(base, changed)))
	if changed {
		return true, ErrChanged
	}
	return req[0] == Quit, nil
}

// Query sends req to the watcher of pack and returns the base it found
// the files clean against. ErrNotRunning: no watcher; ErrChanged: the
// files changed.
func Query(pack string, req byte, timeout time.Duration) (Base, error) {
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return Base{}, err
	}
	defer unix.Close(c)
	timeouts(c, timeout)
	if err := unix.Connect(c, &unix.SockaddrUnix{Name: socketName(pack)}); err != nil {
		return Base{}, ErrNotRunning
	}
	if !sameUser(c) {
		return Base{}, ErrNotRunning
	}
	if _, err := unix.Write(c, []byte{req}); err != nil {
		return Base{}, fmt.Errorf("change watcher: %w", err)
	}
	var line []byte
	buf := make([]byte, 256)
	for len(line) < 1024 {
		n, err := unix.Read(c, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return Base{}, fmt.Errorf("change watcher: %w", err)
		}
		if n <= 0 {
			break
		}
		line = append(line, buf[:n]...)
		if line[len(line)-1] == '\n' {
			break
		}
	}
	return parseReply(string(line))
}

// sameUser reports whether the other end of c runs as this user (anyone
// on the machine can reach an abstract socket).
func sameUser(c int) bool {
	cred, err := unix.GetsockoptUcred(c, unix.SOL_SOCKET, unix.SO_PEERCRED)
	return err == nil && int(cred.Uid) == os.Getuid()
}

func timeouts(c int, d time.Duration) {
	tv := unix.NsecToTimeval(d.Nanoseconds())
	_ = unix.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	_ = unix.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
}

// Pids returns the process ids of the watchers started for pack (from
// their command lines), whether or not they answer yet.
func Pids(pack string) []int {
	want := "\x00watch\x00--pack-folder=" + pack + "\x00"
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), want) {
			out = append(out, pid)
		}
	}
	return out
}

// Start starts "argv0 watch --pack-folder=pack" from exe in the
// background, in its own session, with no terminal and no inherited
// output: the launcher waiting for the pull hook must not wait for it.
func Start(exe, argv0, pack string) error {
	cmd := exec.Command(exe, "watch", "--pack-folder="+pack)
	cmd.Args[0] = argv0
	cmd.Dir = "/"
	// A profile asked of the pull is the pull's: a watcher inheriting the
	// request would overwrite it when the game ends.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INSTANCE_SYNC_CPUPROFILE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}
