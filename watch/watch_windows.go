package watch

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf16"
	"unsafe"

	"golang.org/x/sys/windows"

	"git.timemachine.center/timemachine/instance-sync/scope"
)

// Supported reports whether this system has a change watcher.
const Supported = true

// notifyFilter are the changes that can alter a walk: names appearing,
// vanishing or renamed, size, mtime and attributes. Reads are not.
const notifyFilter = windows.FILE_NOTIFY_CHANGE_FILE_NAME | windows.FILE_NOTIFY_CHANGE_DIR_NAME |
	windows.FILE_NOTIFY_CHANGE_ATTRIBUTES | windows.FILE_NOTIFY_CHANGE_SIZE |
	windows.FILE_NOTIFY_CHANGE_LAST_WRITE | windows.FILE_NOTIFY_CHANGE_CREATION

// keyQuery marks a client's request in the completion port, behind every
// folder change completed before it.
const keyQuery = ^uintptr(0)

// dirWatch is one folder under ReadDirectoryChangesW.
type dirWatch struct {
	h   windows.Handle
	rel string // relative to the pack folder, "/"-separated; "" is the pack folder
	sub bool   // the whole tree below it
	ov  windows.Overlapped
	buf []uint32 // FILE_NOTIFY_INFORMATION records need DWORD alignment
}

type watcher struct {
	pack  string
	scope scope.Scope
	port  windows.Handle
	dirs  []*dirWatch
}

// Serve runs the watcher of pack until something in scope changes (it
// returns ErrChanged), a client sends Quit, maxAge passes, or pack is
// deleted or moved away (ErrChanged). It watches the folders above the
// include entries and each include folder's whole tree
// (ReadDirectoryChangesW), then walks the scope: unless the walk's
// digest is base.Digest, the files already differ from the last sync and
// it returns ErrChanged at once. Only then does it answer clients, on a
// loopback port whose address and per-run secret are in a file only this
// user can read.
func Serve(pack string, sc scope.Scope, base Base, maxAge time.Duration) error {
	h, err := homeOf(pack)
	if err != nil {
		return err
	}
	lock, err := takeLock(pack)
	if err != nil {
		return err
	}
	defer lock.Close()
	port, err := windows.CreateIoCompletionPort(windows.InvalidHandle, 0, 0, 1)
	if err != nil {
		return fmt.Errorf("change watcher: %w", err)
	}
	w := &watcher{pack: pack, scope: sc, port: port}
	defer w.close()
	for _, p := range sc.Parents() {
		if err := w.add(p, false); err != nil {
			return err
		}
	}
	for _, inc := range sc.Include {
		if dir, ok := strings.CutSuffix(inc, "/"); ok {
			if err := w.add(dir, true); err != nil {
				return err
			}
		}
	}
	m, _, err := sc.WalkFiles(pack, nil)
	if err != nil {
		return err
	}
	if m.Digest() != base.Digest || w.drain() {
		return ErrChanged
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("change watcher: %w", err)
	}
	defer ln.Close()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	key := hex.EncodeToString(secret)
	addrFile := infoPath(pack, "addr")
	if err := writeFile(addrFile, ln.Addr().String()+" "+key+"\n"); err != nil {
		return err
	}
	defer os.Remove(addrFile)
	conns := make(chan query, 8)
	go accept(ln, key, port, conns)

	deadline := time.Now().Add(maxAge)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		if err := h.gone(); err != nil {
			return err
		}
		var n uint32
		var k uintptr
		var ov *windows.Overlapped
		err := windows.GetQueuedCompletionStatus(port, &n, &k, &ov, uint32(min(left, checkEvery).Milliseconds())+1)
		if ov == nil && k != keyQuery {
			if errors.Is(err, windows.WAIT_TIMEOUT) {
				continue
			}
			if err != nil {
				return fmt.Errorf("change watcher: %w", err)
			}
		}
		if k == keyQuery {
			q := <-conns
			changed := w.drain()
			_, _ = q.c.Write([]byte(reply(base, changed)))
			q.c.Close()
			if changed {
				return ErrChanged
			}
			if q.req == Quit {
				return nil
			}
			continue
		}
		if w.changed(k, n, err) {
			return ErrChanged
		}
	}
}

// add watches the folder rel (its whole tree with sub). A folder that
// does not exist is not watched: its creation shows in the folder above.
func (w *watcher) add(rel string, sub bool) error {
	name := filepath.Join(w.pack, filepath.FromSlash(rel))
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return err
	}
	h, err := windows.CreateFile(p, windows.FILE_LIST_DIRECTORY,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OVERLAPPED, 0)
	if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) || errors.Is(err, windows.ERROR_PATH_NOT_FOUND) || errors.Is(err, windows.ERROR_DIRECTORY) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "watch", Path: rel, Err: err}
	}
	d := &dirWatch{h: h, rel: rel, sub: sub, buf: make([]uint32, 16<<10)}
	if _, err := windows.CreateIoCompletionPort(h, w.port, uintptr(len(w.dirs)), 0); err != nil {
		windows.CloseHandle(h)
		return fmt.Errorf("change watcher: %w", err)
	}
	w.dirs = append(w.dirs, d)
	if err := d.read(); err != nil {
		return &os.PathError{Op: "ReadDirectoryChangesW", Path: rel, Err: err}
	}
	return nil
}

// read asks for the next changes of d; they complete on the port.
func (d *dirWatch) read() error {
	d.ov = windows.Overlapped{}
	return windows.ReadDirectoryChanges(d.h, (*byte)(unsafe.Pointer(&d.buf[0])), uint32(len(d.buf)*4), d.sub, notifyFilter, nil, &d.ov, 0)
}

// drain handles every folder change completed so far and reports whether
// anything in scope changed. A query's packet comes after the changes
// completed before it, but a change made while a folder had no read
// outstanding completes only when the read is asked again, behind the
// query: hence this before every answer. Queries met here are queued
// again.
func (w *watcher) drain() bool {
	queries := 0
	defer func() {
		for range queries {
			_ = windows.PostQueuedCompletionStatus(w.port, 0, keyQuery, nil)
		}
	}()
	for {
		var n uint32
		var k uintptr
		var ov *windows.Overlapped
		err := windows.GetQueuedCompletionStatus(w.port, &n, &k, &ov, 0)
		if ov == nil && k == keyQuery && err == nil {
			queries++
			continue
		}
		if ov == nil {
			return false // nothing queued
		}
		if w.changed(k, n, err) {
			return true
		}
	}
}

// changed handles one completed read of folder k (n bytes, or the read's
// error) and asks for the next. Lost events (a buffer overflow, a folder
// gone) count as a change.
func (w *watcher) changed(k uintptr, n uint32, err error) bool {
	if k >= uintptr(len(w.dirs)) {
		return true
	}
	d := w.dirs[k]
	if err != nil || n == 0 {
		return true // ERROR_NOTIFY_ENUM_DIR, a folder deleted, or more changes than the buffer held
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&d.buf[0])), len(d.buf)*4)[:n]
	for off := 0; off+12 <= len(buf); {
		next := int(binary.LittleEndian.Uint32(buf[off:]))
		nameLen := int(binary.LittleEndian.Uint32(buf[off+8:]))
		if off+12+nameLen > len(buf) {
			return true
		}
		u := make([]uint16, nameLen/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(buf[off+12+2*i:])
		}
		name := strings.ReplaceAll(string(utf16.Decode(u)), `\`, "/")
		if d.rel != "" {
			name = d.rel + "/" + name
		}
		if w.matters(name) {
			return true
		}
		if next == 0 {
			break
		}
		off += next
	}
	return d.read() != nil
}

// matters reports whether a change to rel can change what a walk
// records. The notice does not say whether rel is a folder, so both are
// asked; a change inside an excluded folder does not matter.
func (w *watcher) matters(rel string) bool {
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		if w.scope.Excluded(dir, true) {
			return false
		}
	}
	return w.scope.Affects(rel, false) || w.scope.Affects(rel, true)
}

func (w *watcher) close() {
	for _, d := range w.dirs {
		windows.CloseHandle(d.h)
	}
	windows.CloseHandle(w.port)
}

// query is a client's authenticated request.
type query struct {
	c   net.Conn
	req byte
}

// accept takes clients: each sends the secret and a request byte. A
// valid one is queued for the watcher behind the folder changes
// completed so far.
func accept(ln net.Listener, key string, port windows.Handle, conns chan<- query) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		msg := make([]byte, len(key)+1)
		if _, err := io.ReadFull(c, msg); err != nil || subtle.ConstantTimeCompare(msg[:len(key)], []byte(key)) != 1 {
			c.Close()
			continue
		}
		select {
		case conns <- query{c, msg[len(key)]}:
		default:
			c.Close() // a flood of clients: they walk
			continue
		}
		if windows.PostQueuedCompletionStatus(port, 0, keyQuery, nil) != nil {
			return
		}
	}
}

// Query sends req to the watcher of pack and returns the base it found
// the files clean against. ErrNotRunning: no watcher; ErrChanged: the
// files changed.
func Query(pack string, req byte, timeout time.Duration) (Base, error) {
	data, err := os.ReadFile(infoPath(pack, "addr"))
	if err != nil {
		return Base{}, ErrNotRunning
	}
	addr, key, ok := strings.Cut(strings.TrimSpace(string(data)), " ")
	if !ok {
		return Base{}, ErrNotRunning
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		return Base{}, ErrNotRunning
	}
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return Base{}, ErrNotRunning
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(append([]byte(key), req)); err != nil {
		return Base{}, fmt.Errorf("change watcher: %w", err)
	}
	line, err := io.ReadAll(io.LimitReader(c, 1024))
	if err != nil && len(line) == 0 {
		return Base{}, fmt.Errorf("change watcher: %w", err)
	}
	return parseReply(string(line))
}

// infoPath is a file about the watcher of pack in this user's cache
// folder (%LocalAppData%, which other users cannot read).
func infoPath(pack, ext string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "instance-sync", "watch", InfoName(pack)+"."+ext)
}

func writeFile(name, data string) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// takeLock holds the lock file of pack's watcher, with this process's id
// in it: one watcher per folder, and Pids finds it before it answers.
func takeLock(pack string) (*os.File, error) {
	name := infoPath(pack, "lock")
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	ol := lockRange()
	if err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol); err != nil {
		f.Close()
		return nil, fmt.Errorf("another watcher runs for %s", pack)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
	return f, nil
}

// lockRange is the byte the lock covers: past the pid, which Windows'
// mandatory locks would keep others from reading.
func lockRange() windows.Overlapped { return windows.Overlapped{Offset: 1 << 20} }

// Pids returns the process id of the watcher started for pack, whether or
// not it answers yet: the holder of its lock file.
func Pids(pack string) []int {
	name := infoPath(pack, "lock")
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	ol := lockRange()
	h := windows.Handle(f.Fd())
	if windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol) == nil {
		_ = windows.UnlockFileEx(h, 0, 1, 0, &ol)
		return nil
	}
	data := make([]byte, 32)
	n, _ := f.ReadAt(data, 0)
	data = data[:n]
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return nil
	}
	return []int{pid}
}

// Start starts "argv0 watch --pack-folder=pack" from exe in the
// background, detached from the launcher's console and with no inherited
// handles: the launcher waiting for the pull hook must not wait for it.
func Start(exe, argv0, pack string) error {
	cmd := exec.Command(exe, "watch", "--pack-folder="+pack)
	cmd.Args[0] = argv0
	cmd.Dir = filepath.VolumeName(pack) + `\`
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INSTANCE_SYNC_CPUPROFILE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP,
		HideWindow:    true,
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}
