package engine

import (
	"context"
	"errors"
	"os"
	"slices"
	"sort"
	"time"

	"git.timemachine.center/timemachine/instance-sync/history"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/scope"
)

// StatusReport is what "instance-sync status" shows. Field names are
// stable: they are the --json output.
type StatusReport struct {
	PackFolder string `json:"pack_folder"`
	OptedIn    bool   `json:"opted_in"`
	Disabled   bool   `json:"disabled"`
	// Copy says why a copied folder is not synced as its original, and
	// what to run.
	Copy          string    `json:"copy,omitempty"`
	InstanceID    string    `json:"instance_id,omitempty"`
	Label         string    `json:"label,omitempty"`
	URL           string    `json:"url,omitempty"`
	User          string    `json:"user,omitempty"`
	LastSnapshot  string    `json:"last_snapshot,omitempty"`
	LastSync      time.Time `json:"last_sync,omitzero"`
	Restoring     string    `json:"restoring,omitempty"`
	PendingFiles  []string  `json:"pending_files"`
	PendingWorlds []string  `json:"pending_worlds"`
	Remote        string    `json:"remote"` // ok, offline, empty, error message
	RemoteHeads   []Head    `json:"remote_heads"`
	Include       []string  `json:"include"`
	Exclude       []string  `json:"exclude"`
	Packwiz       []string  `json:"packwiz_owned"`
}

// Head is a cloud head in the status report.
type Head struct {
	ID    string    `json:"id"`
	Time  time.Time `json:"time"`
	Host  string    `json:"host"`
	Label string    `json:"label,omitempty"`
	Ours  bool      `json:"ours"` // this computer's last sync
	// Merged: a pull merged it into the files here; the next push names
	// it as a base.
	Merged bool `json:"merged,omitempty"`
}

// Status reports the instance's sync state. It asks the server for the
// snapshot list (no restic run unless there are snapshots it never saw).
func Status(ctx context.Context, opt Options) (StatusReport, error) {
	if err := opt.defaults(); err != nil {
		return StatusReport{}, err
	}
	p := instance.Paths{Pack: opt.PackFolder}
	r := StatusReport{PackFolder: opt.PackFolder, PendingFiles: []string{}, PendingWorlds: []string{}, RemoteHeads: []Head{}}
	sc, err := p.LoadScope()
	if err != nil {
		return r, err
	}
	r.Include, r.Exclude, r.Packwiz = sc.Include, sc.Exclude, sc.Packwiz
	if r.Packwiz == nil {
		r.Packwiz = []string{}
	}
	s, err := open(opt)
	if errors.Is(err, instance.ErrNotOptedIn) {
		if _, derr := os.Stat(p.Disabled()); derr == nil {
			r.Disabled = true
			if data, err := os.ReadFile(p.Disabled()); err == nil {
				if c, err := instance.ParseConfig(data); err == nil {
					r.InstanceID, r.URL, r.User = c.InstanceID, c.URL, c.User
				}
			}
		}
		return r, nil
	}
	var no *NotOriginalError
	if errors.As(err, &no) {
		if c, cerr := p.LoadConfig(); cerr == nil {
			r.InstanceID, r.URL, r.User = c.InstanceID, c.URL, c.User
		}
		r.Copy = no.Error()
		return r, nil
	}
	if err != nil {
		return r, err
	}
	defer s.close()
	r.OptedIn = true
	r.InstanceID, r.URL, r.User, r.Label = s.cfg.InstanceID, s.cfg.URL, s.cfg.User, s.label()
	r.LastSnapshot, r.LastSync, r.Restoring = s.state.Last, s.state.LastSync, s.state.Restoring
	cur, _, err := s.walk()
	if err != nil {
		return r, err
	}
	if !s.state.Synced() {
		r.PendingFiles = cur.Paths()
	} else {
		r.PendingFiles = scope.Diff(s.lastManifest(), cur).All()
	}
	if r.PendingFiles == nil {
		r.PendingFiles = []string{}
	}
	r.PendingWorlds = scope.Worlds(r.PendingFiles)
	if r.PendingWorlds == nil {
		r.PendingWorlds = []string{}
	}
	l, err := s.server.ListSnapshots(ctx, s.cfg.InstanceID)
	switch {
	case errors.Is(err, remote.ErrUnreachable):
		r.Remote = "offline"
		return r, nil
	case err != nil:
		return r, err
	case !l.Exists:
		r.Remote = "empty"
		return r, nil
	}
	g, err := s.graph(ctx, l)
	if err != nil {
		return r, err
	}
	r.Remote = "ok"
	for _, h := range g.Heads() {
		r.RemoteHeads = append(r.RemoteHeads, Head{ID: h.ID, Time: h.Time, Host: h.Host, Label: h.Label, Ours: h.ID == s.state.Last, Merged: slices.Contains(s.state.Merged, h.ID)})
	}
	return r, nil
}

// HistoryEntry is one snapshot in "instance-sync history".
type HistoryEntry struct {
	history.Snapshot
	Head bool `json:"head"`
	Ours bool `json:"ours"`
}

// History lists the instance's snapshots, newest first.
func History(ctx context.Context, opt Options) ([]HistoryEntry, error) {
	s, err := open(opt)
	if err != nil {
		return nil, err
	}
	defer s.close()
	l, err := s.server.ListSnapshots(ctx, s.cfg.InstanceID)
	if err != nil {
		return nil, err
	}
	g, err := s.graph(ctx, l)
	if err != nil {
		return nil, err
	}
	heads := map[string]bool{}
	for _, h := range g.Heads() {
		heads[h.ID] = true
	}
	out := []HistoryEntry{}
	for _, sn := range g {
		out = append(out, HistoryEntry{Snapshot: sn, Head: heads[sn.ID], Ours: sn.ID == s.state.Last})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
