package history

// Action is what a pull does.
type Action int

const (
	// Nothing: local and remote agree.
	Nothing Action = iota
	// LocalAhead: only local changed; the next push uploads it.
	LocalAhead
	// FastForward: restore Plan.Target; nothing changed here since our
	// last sync, and Target is the only new head.
	FastForward
	// Conflict: the player must choose between local and Plan.Heads.
	Conflict
	// Resume: a restore of Plan.Target was interrupted; finish it.
	Resume
)

func (a Action) String() string {
	return [...]string{"nothing", "local-ahead", "fast-forward", "conflict", "resume"}[a]
}

// Input is everything the decision looks at.
type Input struct {
	LocalChanged bool     // the scope differs from the last synced manifest (or no manifest and not empty)
	Last         string   // snapshot this machine last synced with ("" = never)
	Skipped      []string // heads the player chose to skip (keep local); named as bases at the next push
	Restoring    string   // an interrupted restore's target, "" if none
	Graph        Graph    // snapshots present in the repository
}

// Plan is the decision.
type Plan struct {
	Action Action
	Target string     // FastForward / Resume: snapshot to restore
	Heads  []Snapshot // Conflict: the cloud heads to choose from, newest first
	Reason string     // one line for the player
	// Safety: before a FastForward, snapshot the local files as a safety
	// snapshot: they are the last sync's version, which is gone from the
	// server (retention removed it).
	Safety bool
}

// Decide is the pull's decision table (README "Commands", the pull
// bullet; DESIGN.md "A pull"), first match wins:
//
//	an interrupted restore's snapshot still in the graph  → Resume it
//	no head but this computer's last sync (or skipped)    → Nothing, or LocalAhead with local changes
//	one new head, no local change, ours no longer a head  → FastForward (Safety when Last is gone)
//	anything else (local changes, several heads)          → Conflict: the player picks
func Decide(in Input) Plan {
	// Snapshots the server's retention re-tagged have new ids; bases and
	// this computer's records may name the old ones.
	in.Graph = in.Graph.Resolved()
	in.Last, in.Restoring = in.Graph.Canonical(in.Last), in.Graph.Canonical(in.Restoring)
	if in.Restoring != "" {
		if _, ok := in.Graph[in.Restoring]; ok {
			return Plan{Action: Resume, Target: in.Restoring, Reason: "finishing an interrupted restore"}
		}
	}
	skipped := map[string]bool{}
	for _, s := range in.Skipped {
		skipped[in.Graph.Canonical(s)] = true
	}
	var moved []Snapshot // heads that are neither ours nor skipped
	heads := in.Graph.Heads()
	for _, h := range heads {
		if h.ID != in.Last && !skipped[h.ID] {
			moved = append(moved, h)
		}
	}
	switch {
	case len(moved) == 0 && !in.LocalChanged:
		return Plan{Action: Nothing, Reason: "up to date"}
	case len(moved) == 0:
		return Plan{Action: LocalAhead, Reason: "local changes not pushed yet; the next push uploads them"}
	}
	// Our own head still standing beside another one is a fork even when
	// nothing changed here: the player picks.
	ownHead := false
	for _, h := range heads {
		if h.ID == in.Last {
			ownHead = true
		}
	}
	if len(moved) == 1 && !ownHead && !in.LocalChanged {
		// Nothing changed here since the last sync, so taking the only new
		// head loses nothing, whether or not the server's retention removed
		// the snapshots between. If it removed the last sync itself, the
		// local files are that version's only copy: a safety snapshot
		// keeps them first.
		_, kept := in.Graph[in.Last]
		p := Plan{Action: FastForward, Target: moved[0].ID, Safety: in.Last != "" && !kept, Reason: "another computer pushed newer progress"}
		if !in.Graph.Descends(moved[0].ID, in.Last) {
			p.Reason += " (the history between was pruned on the server)"
		}
		return p
	}
	reason := "both this computer and the cloud have changes"
	switch {
	case len(moved) > 1 || ownHead:
		reason = "the cloud has several versions (played on two computers without syncing)"
	}
	return Plan{Action: Conflict, Heads: moved, Reason: reason}
}
