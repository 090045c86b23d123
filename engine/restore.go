package engine

import (
	"context"
	"fmt"

	"git.timemachine.center/timemachine/instance-sync/ui"
)

// Restore brings back an older snapshot (id or unique prefix): a safety
// snapshot of the local files first, then the restore. The current cloud
// heads are recorded as superseded, so the next push makes the restored
// version the newest and other computers fast-forward to it.
func Restore(ctx context.Context, opt Options, snapshot string) (Result, error) {
	s, err := open(opt)
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	if err := s.resumeJournal(); err != nil {
		return Result{}, err
	}
	l, err := s.server.ListSnapshots(ctx, s.cfg.InstanceID)
	if err != nil {
		return Result{}, err
	}
	g, err := s.graph(ctx, l)
	if err != nil {
		return Result{}, err
	}
	target, ok := g.Resolve(snapshot)
	if !ok {
		return Result{}, fmt.Errorf("snapshot %q matches no snapshot or several; run \"instance-sync history\" for the ids", snapshot)
	}
	cur, facts, err := s.walk()
	if err != nil {
		return Result{}, err
	}
	safety, err := s.safety(ctx, cur, facts)
	if err != nil {
		return Result{}, err
	}
	heads := g.Heads()
	if err := s.restore(ctx, target.ID, s.editedSince(cur)); err != nil {
		return Result{}, err
	}
	for _, h := range heads {
		if h.ID != target.ID {
			s.state.Skipped = appendUnique(s.state.Skipped, h.ID)
		}
	}
	if err := s.save(); err != nil {
		return Result{}, err
	}
	msg := fmt.Sprintf("restored snapshot %s from %s (%s)", short(target.ID), target.Host, target.Time.Local().Format("2006-01-02 15:04"))
	if safety != "" {
		msg += "; the files it replaced are in safety snapshot " + short(safety)
	}
	s.opt.UI.Event(ui.DoneEvent{Action: string(ActionRestored), Snapshot: target.ID, Message: msg, Safety: safety})
	s.opt.UI.Info(msg)
	return Result{Action: ActionRestored, Snapshot: target.ID, Message: msg}, nil
}
