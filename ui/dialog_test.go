package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTK answers dialogs from a script and records what was shown.
type fakeTK struct {
	mu        sync.Mutex
	shown     []string // "kind: title: text"
	questions []Button
	entries   []string
	passwords [][2]string
	list      int
	win       *fakeWin
	err       error // returned by every dialog when set
}

func (f *fakeTK) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shown = append(f.shown, s)
}

func (f *fakeTK) Shown() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.shown...)
}

func (f *fakeTK) Question(_ context.Context, title, text, ok, extra, cancel string) (Button, error) {
	f.record(fmt.Sprintf("question: %s: %s [%s|%s|%s]", title, text, ok, extra, cancel))
	if f.err != nil {
		return ButtonCancel, f.err
	}
	b := f.questions[0]
	f.questions = f.questions[1:]
	if b == ButtonCancel {
		return b, ErrCancelled
	}
	return b, nil
}

func (f *fakeTK) Entry(_ context.Context, title, text, value string) (string, error) {
	f.record("entry: " + title + ": " + text + " [" + value + "]")
	if len(f.entries) == 0 {
		return "", ErrCancelled
	}
	e := f.entries[0]
	f.entries = f.entries[1:]
	if e == "\x00" {
		return value, nil // the player accepted the prefilled value
	}
	return e, nil
}

func (f *fakeTK) Password(_ context.Context, title string) (string, string, error) {
	f.record("password: " + title)
	if len(f.passwords) == 0 {
		return "", "", ErrCancelled
	}
	p := f.passwords[0]
	f.passwords = f.passwords[1:]
	return p[0], p[1], nil
}

func (f *fakeTK) List(_ context.Context, title, text string, items []string) (int, error) {
	f.record("list: " + title + ": " + strings.Join(items, " | "))
	return f.list, nil
}

func (f *fakeTK) Message(_ context.Context, kind MessageKind, title, text string) error {
	f.record(fmt.Sprintf("message %d: %s: %s", kind, title, text))
	return nil
}

func (f *fakeTK) Progress(_ context.Context, title string) (ProgressWindow, error) {
	f.record("progress: " + title)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.win = &fakeWin{done: make(chan struct{})}
	return f.win, nil
}

func (f *fakeTK) window() *fakeWin {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.win
}

type fakeWin struct {
	mu      sync.Mutex
	updates []string
	once    sync.Once
	done    chan struct{}
	closed  bool
}

func (w *fakeWin) Update(pct float64, lines []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.updates = append(w.updates, fmt.Sprintf("%.0f %s", pct, strings.Join(lines, " / ")))
	return nil
}

func (w *fakeWin) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.once.Do(func() { close(w.done) })
	return nil
}

// cancel is the player pressing Cancel.
func (w *fakeWin) cancel()               { w.once.Do(func() { close(w.done) }) }
func (w *fakeWin) Done() <-chan struct{} { return w.done }

func newTestDialogs(tk *fakeTK) (*Dialogs, *strings.Builder) {
	var log strings.Builder
	d := NewDialogs(tk, NewPlain(&log))
	d.Delay = 20 * time.Millisecond
	return d, &log
}

var conflict = Conflict{
	Instance: "Skyblock",
	Local:    Side{Host: "desk", Time: time.Now().Add(-2 * time.Hour), Size: 2048, Files: 3, Worlds: []string{"World"}},
	Cloud:    []Side{{SnapshotID: "0123456789abcdef", Host: "laptop", Label: "Skyblock", Time: time.Now().Add(-5 * time.Minute), Size: 4096, Files: 7}},
}

func TestDialogConflict(t *testing.T) {
	for _, tt := range []struct {
		button Button
		err    error
		want   Choice
		wantE  error
	}{
		{ButtonOK, nil, ChoiceCloud, nil},
		{ButtonExtra, nil, ChoiceLocal, nil},
		{ButtonCancel, nil, ChoiceCancel, ErrCancelled},
		{0, errors.New("zenity crashed"), ChoiceCancel, nil},
	} {
		tk := &fakeTK{questions: []Button{tt.button}, err: tt.err}
		d, _ := newTestDialogs(tk)
		got, err := d.Conflict(context.Background(), conflict)
		if got != tt.want {
			t.Errorf("button %d: choice %s, want %s", tt.button, got, tt.want)
		}
		switch {
		case tt.err != nil && !errors.Is(err, ErrHeadless):
			t.Errorf("toolkit failure became %v, want ErrHeadless", err)
		case tt.err == nil && !errors.Is(err, tt.wantE) && err != tt.wantE:
			t.Errorf("button %d: err %v, want %v", tt.button, err, tt.wantE)
		}
		q := tk.Shown()[0]
		for _, want := range []string{"Skyblock", "desk", "laptop", "worlds: World", "Nothing is lost either way", "safety snapshot", "[Use cloud|Keep local|Cancel launch]"} {
			if !strings.Contains(q, want) {
				t.Errorf("conflict dialog lacks %q:\n%s", want, q)
			}
		}
	}
}

// TestDialogConflictPerWorld: a conflict about one world that the rest of
// a merge does not touch names that world in the title, says everything
// else merges, and words the buttons for the world.
func TestDialogConflictPerWorld(t *testing.T) {
	c := conflict
	c.Merges = true
	c.Cloud = []Side{{SnapshotID: "0123456789abcdef", Host: "laptop", Files: 1, Worlds: []string{"World"}}}
	tk := &fakeTK{questions: []Button{ButtonExtra}}
	d, _ := newTestDialogs(tk)
	if got, err := d.Conflict(context.Background(), c); got != ChoiceLocal || err != nil {
		t.Fatalf("choice %s, %v", got, err)
	}
	q := tk.Shown()[0]
	for _, want := range []string{": choose a version of World:", "only these worlds changed on both sides; everything else merges either way", "Use cloud: plays the cloud's version of these worlds", "Keep local: plays this computer's version of these worlds"} {
		if !strings.Contains(q, want) {
			t.Errorf("per-world conflict dialog lacks %q:\n%s", want, q)
		}
	}
	c.Cloud[0].Worlds = []string{"World", "Creative"}
	tk = &fakeTK{questions: []Button{ButtonOK}}
	d, _ = newTestDialogs(tk)
	d.Conflict(context.Background(), c)
	if q := tk.Shown()[0]; !strings.Contains(q, ": choose a version: ") {
		t.Errorf("a conflict about two worlds names one in its title:\n%s", q)
	}
}

// TestConflictTextUsesDescribe: the dialog lists DescribeConflict's lines
// (the log's), and says "nothing is lost" once, with the button names.
func TestConflictTextUsesDescribe(t *testing.T) {
	text := ConflictText(conflict)
	for _, l := range DescribeConflict(conflict) {
		if strings.HasPrefix(l, "nothing is lost") {
			if strings.Contains(text, l) {
				t.Errorf("the dialog repeats %q:\n%s", l, text)
			}
		} else if !strings.Contains(text, "• "+l+"\n") {
			t.Errorf("the dialog lacks %q:\n%s", l, text)
		}
	}
}

func TestDialogLogin(t *testing.T) {
	tk := &fakeTK{
		entries:   []string{"\x00", "https://cloud.example"},
		passwords: [][2]string{{"alice", "wrong"}, {"alice", "pw"}, {" alice ", "pw"}},
		list:      2,
	}
	d, _ := newTestDialogs(tk)
	var checks []string
	c, err := d.Login(context.Background(), Login{
		URL: "https://default.example",
		Check: func(_ context.Context, url, user, pw string) error {
			checks = append(checks, url+" "+user+" "+pw)
			switch {
			case url == "https://default.example" && pw == "wrong":
				return fmt.Errorf("%w for %s", ErrBadCredentials, url)
			case url == "https://default.example":
				return errors.New("server unreachable; check the URL")
			}
			return nil
		},
		Instances: func(_ context.Context, c Credentials) ([]Instance, bool) {
			return []Instance{{ID: "01AAA", Label: "Survival"}, {ID: "01BBB", Label: "Skyblock", Host: "laptop"}}, true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://cloud.example" || c.User != "alice" || c.Password != "pw" || c.Join != "01BBB" {
		t.Fatalf("credentials %+v", c)
	}
	// wrong password: asked again for the password on the same server;
	// unreachable: asked for the URL again, prefilled with the last one.
	want := []string{"https://default.example alice wrong", "https://default.example alice pw", "https://cloud.example alice pw"}
	if strings.Join(checks, "\n") != strings.Join(want, "\n") {
		t.Fatalf("checks:\n%s", strings.Join(checks, "\n"))
	}
	shown := strings.Join(tk.Shown(), "\n")
	for _, w := range []string{"[https://default.example]", "Wrong user or password", "Try again", "New instance", "Skyblock  (01BBB, last played on laptop)"} {
		if !strings.Contains(shown, w) {
			t.Errorf("dialogs lack %q:\n%s", w, shown)
		}
	}
}

func TestDialogLoginCancel(t *testing.T) {
	d, _ := newTestDialogs(&fakeTK{})
	if _, err := d.Login(context.Background(), Login{URL: "x"}); !errors.Is(err, ErrCancelled) {
		t.Fatalf("err %v", err)
	}
}

func TestDialogLoginNoListing(t *testing.T) {
	tk := &fakeTK{entries: []string{"\x00", "01JOINME"}, passwords: [][2]string{{"bob", "pw"}}}
	d, _ := newTestDialogs(tk)
	c, err := d.Login(context.Background(), Login{URL: "https://s", Instances: func(context.Context, Credentials) ([]Instance, bool) { return nil, false }})
	if err != nil || c.Join != "01JOINME" {
		t.Fatalf("%+v %v", c, err)
	}
}

// TestDialogProgressQuick: an operation shorter than the delay shows no
// window at all.
func TestDialogProgressQuick(t *testing.T) {
	tk := &fakeTK{}
	d, _ := newTestDialogs(tk)
	d.Delay = time.Hour
	d.ProgressStart("pull")
	d.ProgressUpdate(Progress{Op: "pull", Percent: 50})
	d.ProgressDone()
	if len(tk.Shown()) != 0 {
		t.Fatalf("shown %v", tk.Shown())
	}
}

func TestDialogProgressShownAndClosed(t *testing.T) {
	tk := &fakeTK{}
	d, _ := newTestDialogs(tk)
	d.ProgressStart("push")
	waitFor(t, func() bool { return tk.window() != nil })
	d.ProgressUpdate(Progress{Op: "push", Percent: 42, BytesDone: 42 << 20, BytesTotal: 100 << 20, ETA: 65 * time.Second, CurrentFile: "saves/World/level.dat"})
	d.ProgressDone()
	w := tk.window()
	if !w.closed {
		t.Fatal("window left open")
	}
	got := strings.Join(w.updates, "\n")
	if !strings.Contains(got, "42 Saving your game to the cloud / 42% · 42.0 MiB of 100.0 MiB · about 1m5s left / saves/World/level.dat") {
		t.Fatalf("updates:\n%s", got)
	}
	select {
	case <-d.Cancelled():
		t.Fatal("closing the window ourselves counted as a cancel")
	case <-time.After(50 * time.Millisecond):
	}
}

func TestDialogProgressCancel(t *testing.T) {
	tk := &fakeTK{}
	d, _ := newTestDialogs(tk)
	d.ProgressStart("pull")
	waitFor(t, func() bool { return tk.window() != nil })
	tk.window().cancel()
	select {
	case <-d.Cancelled():
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not reach Cancelled()")
	}
	d.ProgressDone()
}

func TestDialogErrorEvent(t *testing.T) {
	tk := &fakeTK{}
	d, log := newTestDialogs(tk)
	d.Event(ErrorEvent{Message: "cancelled by the player", Cancelled: true})
	d.Event(DoneEvent{})
	if len(tk.Shown()) != 0 {
		t.Fatalf("shown %v", tk.Shown())
	}
	d.Event(ErrorEvent{Message: "sync.json: bad; run \"instance-sync init --force\"", ExitCode: 1})
	shown := tk.Shown()
	if len(shown) != 1 || !strings.Contains(shown[0], "message 2:") || !strings.Contains(shown[0], "Sync.json: bad.\n\nRun \"instance-sync init --force\".") {
		t.Fatalf("shown %q", shown)
	}
	d.Error("boom")
	if !strings.Contains(log.String(), "instance-sync: error: boom\n") {
		t.Fatalf("log %q", log.String())
	}
}

func TestSentence(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "",
		"boom":                        "Boom.",
		"a: b; run c":                 "A: b.\n\nRun c.",
		"wrong user or password; try": "Wrong user or password.\n\nTry.",
	} {
		if got := Sentence(in); got != want {
			t.Errorf("Sentence(%q) = %q, want %q", in, got, want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The relogin dialog: "Log in again" is true; "Play without sync" and a
// dialog that cannot be shown are false, the latter said in the log (the
// player would otherwise read that nobody asked).
func TestDialogAskRelogin(t *testing.T) {
	for _, tt := range []struct {
		button Button
		err    error
		want   bool
		log    string
	}{
		{ButtonOK, nil, true, ""},
		{ButtonCancel, nil, false, ""},
		{ButtonOK, errors.New("no display"), false, "instance-sync: warning: cannot show the log-in-again dialog: no display\n"},
	} {
		tk := &fakeTK{questions: []Button{tt.button}, err: tt.err}
		var log strings.Builder
		d := NewDialogs(tk, NewPlain(&log))
		if got := d.AskRelogin(context.Background(), "wrong user or password for https://s", "pull"); got != tt.want {
			t.Errorf("button %v, err %v: AskRelogin = %v, want %v", tt.button, tt.err, got, tt.want)
		}
		if got := log.String(); got != tt.log {
			t.Errorf("button %v, err %v: log %q, want %q", tt.button, tt.err, got, tt.log)
		}
		if shown := tk.Shown(); len(shown) != 1 || !strings.Contains(shown[0], "[Log in again||Play without sync]") {
			t.Errorf("dialog shown: %q", shown)
		}
	}
}
