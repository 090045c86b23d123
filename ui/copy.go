package ui

import (
	"context"
	"errors"
	"fmt"
)

// CopyChoice is the player's answer about an instance folder that is a
// copy of one that syncs elsewhere.
type CopyChoice int

const (
	// CopyNotNow syncs nothing this time and asks again next time.
	CopyNotNow CopyChoice = iota
	// CopySame syncs the copy as the same instance as the original.
	CopySame
	// CopyNew makes the copy a new instance with its own history.
	CopyNew
	// CopyOff pauses sync for the copy (sync.json.disabled).
	CopyOff
)

// CopyAsker is a UI that can ask what to do with a copied instance
// folder. Only the dialogs can: elsewhere the hooks print one warning
// line naming the commands, and sync nothing.
type CopyAsker interface {
	AskCopy(ctx context.Context, text string) (CopyChoice, error)
}

// AskCopy asks whether to sync a copied instance as the same instance, as
// a new instance, or not at all. Closing the window answers "not at all"
// (the toolkit cannot tell it from that button), which "instance-sync
// enable" undoes.
func (d *Dialogs) AskCopy(ctx context.Context, text string) (CopyChoice, error) {
	d.closeProgress()
	b, err := d.tk.Question(ctx, d.Title+": a copied instance", text, "Same instance", "New instance", "Not at all")
	if errors.Is(err, ErrCancelled) {
		return CopyOff, nil
	}
	if err != nil {
		d.Log.Warn(fmt.Sprintf("cannot show the copied-instance dialog: %v", err))
		return CopyNotNow, ErrHeadless
	}
	switch b {
	case ButtonOK:
		return CopySame, nil
	case ButtonExtra:
		return CopyNew, nil
	}
	return CopyOff, nil
}
