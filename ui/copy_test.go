package ui

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// The copied-instance dialog maps its three buttons to the three answers;
// closing it is "not at all"; a dialog that cannot be shown answers as a
// headless UI, so the hook prints the commands instead.
func TestDialogAskCopy(t *testing.T) {
	for _, tt := range []struct {
		button Button
		err    error
		want   CopyChoice
		wantE  error
	}{
		{ButtonOK, nil, CopySame, nil},
		{ButtonExtra, nil, CopyNew, nil},
		{ButtonCancel, nil, CopyOff, nil},
		{0, errors.New("zenity crashed"), CopyNotNow, ErrHeadless},
	} {
		tk := &fakeTK{questions: []Button{tt.button}, err: tt.err}
		d, _ := newTestDialogs(tk)
		got, err := d.AskCopy(context.Background(), "This instance is a copy")
		if got != tt.want || !errors.Is(err, tt.wantE) && err != tt.wantE {
			t.Errorf("button %d: %d, %v; want %d, %v", tt.button, got, err, tt.want, tt.wantE)
		}
		if q := tk.Shown()[0]; !strings.Contains(q, "This instance is a copy [Same instance|New instance|Not at all]") {
			t.Errorf("dialog: %s", q)
		}
	}
	var _ CopyAsker = (*Dialogs)(nil)
	var u UI = NewPlain(nil)
	if _, ok := u.(CopyAsker); ok {
		t.Fatal("plain lines can ask about a copy")
	}
}
