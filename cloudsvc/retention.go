package cloudsvc

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Policy is restic's keep policy applied to every repository. Zero fields are
// not passed; all zero means retention removes nothing.
type Policy struct {
	KeepLast    int
	KeepDaily   int
	KeepWeekly  int
	KeepMonthly int
}

func (p Policy) args() []string {
	var a []string
	add := func(flag string, n int) {
		if n > 0 {
			a = append(a, flag, strconv.Itoa(n))
		}
	}
	add("--keep-last", p.KeepLast)
	add("--keep-daily", p.KeepDaily)
	add("--keep-weekly", p.KeepWeekly)
	add("--keep-monthly", p.KeepMonthly)
	return a
}

// protectedIDs are the snapshots retention must never remove whatever the
// policy says: every head (a push no other push names as its base: it is
// some machine's latest progress) and every safety snapshot younger than
// keepSafety (the player's local state taken before "use cloud").
func protectedIDs(snaps []snapshot, now time.Time, keepSafety time.Duration) map[string]bool {
	alias := aliases(snaps)
	named := map[string]bool{}
	var bases []string
	for _, s := range snaps {
		if s.kind() != "push" {
			continue
		}
		for _, t := range s.Tags {
			if b, ok := strings.CutPrefix(t, "base:"); ok && b != "" {
				b = canonical(alias, b)
				named[b] = true
				bases = append(bases, b)
			}
		}
	}
	isBase := func(id string) bool {
		if named[id] {
			return true
		}
		// Tolerate abbreviated ids: a base that is a prefix of id names it.
		for _, b := range bases {
			if len(b) < len(id) && strings.HasPrefix(id, b) {
				return true
			}
		}
		return false
	}
	keep := map[string]bool{}
	for _, s := range snaps {
		switch s.kind() {
		case "push":
			if !isBase(s.ID) {
				keep[s.ID] = true
			}
		case "safety":
			if now.Sub(s.Time) < keepSafety {
				keep[s.ID] = true
			}
		}
	}
	return keep
}

// aliases maps the id each re-tagged snapshot was first written under
// (restic's "original") to its id now: bases written before a re-tag name
// the old id.
func aliases(snaps []snapshot) map[string]string {
	alias := map[string]string{}
	for _, s := range snaps {
		if s.Original != "" && s.Original != s.ID {
			alias[s.Original] = s.ID
		}
	}
	return alias
}

func canonical(alias map[string]string, id string) string {
	if now, ok := alias[id]; ok {
		return now
	}
	return id
}

// retag is one snapshot's tag change: bases that were forgotten replaced
// by the nearest kept ancestors.
type retag struct {
	ID          string
	Remove, Add []string // whole tags ("base:<id>")
}

// retagPlan keeps the history graph connected after removing the
// snapshots in removed: a kept snapshot whose base was removed names,
// instead, the nearest kept snapshots it descends from through removed
// ones. Without that, a kept ancestor that lost its last child looks like
// a head to the clients (a false fork), and a computer whose last sync is
// that ancestor cannot tell the newest version descends from it. A base
// with no kept ancestor stays as it is (it names history that is gone).
func retagPlan(snaps []snapshot, removed map[string]bool) []retag {
	alias := aliases(snaps)
	byID := map[string]snapshot{}
	for _, s := range snaps {
		byID[s.ID] = s
	}
	kept := func(id string) bool {
		_, ok := byID[id]
		return ok && !removed[id]
	}
	basesOf := func(s snapshot) []string {
		var out []string
		for _, t := range s.Tags {
			if b, ok := strings.CutPrefix(t, "base:"); ok && b != "" {
				out = append(out, b)
			}
		}
		return out
	}
	// nearestKept walks from a removed base through removed snapshots to
	// the first kept ones on each path.
	nearestKept := func(start string) []string {
		var found []string
		seen := map[string]bool{}
		queue := []string{start}
		for len(queue) > 0 {
			id := canonical(alias, queue[0])
			queue = queue[1:]
			if seen[id] {
				continue
			}
			seen[id] = true
			if kept(id) {
				found = append(found, id)
				continue
			}
			if s, ok := byID[id]; ok {
				queue = append(queue, basesOf(s)...)
			}
		}
		sort.Strings(found)
		return found
	}
	var plan []retag
	for _, s := range snaps {
		if removed[s.ID] || s.kind() == "" {
			continue
		}
		bases := basesOf(s)
		has := map[string]bool{}
		for _, b := range bases {
			has[canonical(alias, b)] = true
		}
		var r retag
		for _, b := range bases {
			if kept(canonical(alias, b)) {
				continue
			}
			anc := nearestKept(b)
			if len(anc) == 0 {
				continue
			}
			r.Remove = append(r.Remove, "base:"+b)
			for _, a := range anc {
				if !has[a] {
					has[a] = true
					r.Add = append(r.Add, "base:"+a)
				}
			}
		}
		if len(r.Remove) > 0 {
			r.ID = s.ID
			plan = append(plan, r)
		}
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].ID < plan[j].ID })
	return plan
}

// forgetGroup is the part of restic's "forget --json" output retention reads.
type forgetGroup struct {
	Remove []snapshot `json:"remove"`
}

// RepoReport is what retention did to one repository.
type RepoReport struct {
	User      string   `json:"user"`
	Instance  string   `json:"instance"`
	Snapshots int      `json:"snapshots"`
	Removed   []string `json:"removed,omitempty"`
	// Retagged are the kept snapshots whose removed bases were replaced by
	// their nearest kept ancestors (restic writes each under a new id).
	Retagged  []string `json:"retagged,omitempty"`
	Protected int      `json:"protected"`
	Error     string   `json:"error,omitempty"`
}

// RetentionReport sums up one retention run.
type RetentionReport struct {
	Started      time.Time    `json:"started"`
	Duration     string       `json:"duration"`
	Repositories []RepoReport `json:"repositories"`
	Removed      int          `json:"removed"`
	Errors       int          `json:"errors"`
}

// retainRepo applies the policy to one repository. restic decides what the
// policy keeps (a dry run, so its keep-* semantics stay restic's own); we
// subtract the protected snapshots and forget the rest explicitly by id, then
// prune, in one restic run.
func (s *Service) retainRepo(ctx context.Context, user, password, inst string) RepoReport {
	rep := RepoReport{User: user, Instance: inst}
	repoPath := s.repoPath(user, inst)
	snaps, err := s.restic.snapshots(ctx, repoPath, password)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	rep.Snapshots = len(snaps)
	protected := protectedIDs(snaps, s.now(), s.cfg.KeepSafety)
	rep.Protected = len(protected)
	policy := s.cfg.Policy.args()
	if len(policy) == 0 || len(snaps) == 0 {
		return rep
	}
	// --group-by '' applies the policy to the instance's whole history, not
	// per host: several machines share one instance and heads protect each
	// machine's latest anyway.
	args := append([]string{"forget", "--dry-run", "--no-lock", "--json", "--group-by", ""}, policy...)
	out, err := s.restic.run(ctx, repoPath, password, "", args...)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	var groups []forgetGroup
	if err := jsonPayload(out, &groups); err != nil {
		rep.Error = fmt.Sprintf("restic forget --dry-run on %s: %v", repoPath, err)
		return rep
	}
	var remove []string
	for _, g := range groups {
		for _, sn := range g.Remove {
			if !protected[sn.ID] {
				remove = append(remove, sn.ID)
			}
		}
	}
	sort.Strings(remove)
	if len(remove) == 0 {
		return rep
	}
	args = append([]string{"forget", "--prune", "--retry-lock", "1m"}, remove...)
	if _, err := s.restic.run(ctx, repoPath, password, "", args...); err != nil {
		rep.Error = err.Error()
		return rep
	}
	rep.Removed = remove
	s.metrics.snapshotsForgotten.Add(float64(len(remove)))
	gone := map[string]bool{}
	for _, id := range remove {
		gone[id] = true
	}
	for _, r := range retagPlan(snaps, gone) {
		args := []string{"tag", "--retry-lock", "1m"}
		for _, t := range r.Remove {
			args = append(args, "--remove", t)
		}
		for _, t := range r.Add {
			args = append(args, "--add", t)
		}
		if _, err := s.restic.run(ctx, repoPath, password, "", append(args, r.ID)...); err != nil {
			rep.Error = err.Error()
			return rep
		}
		rep.Retagged = append(rep.Retagged, r.ID)
	}
	return rep
}

// RunRetention applies the policy to every repository of every account, at
// most Config.ResticConcurrency at a time, and retries old keys a rotation
// could not remove.
func (s *Service) RunRetention(ctx context.Context) (RetentionReport, error) {
	return s.runRetention(ctx, true)
}

// retentionLock is the store lock that lets one node at a time run
// retention: an interval run and an on-demand run, or two nodes' runs, would
// only fight over repository locks.
const retentionLock = "retention"

// runRetention is RunRetention; without wait it skips the run when another
// one holds the lock.
func (s *Service) runRetention(ctx context.Context, wait bool) (RetentionReport, error) {
	if s.restic == nil || s.restic.bin == "" {
		return RetentionReport{}, errNoRestic
	}
	var (
		unlock func()
		ok     bool
		err    error
	)
	if wait {
		unlock, err = s.store.Lock(ctx, retentionLock)
	} else {
		unlock, ok, err = s.store.TryLock(ctx, retentionLock)
		if err == nil && !ok {
			s.log.Printf("retention: already running (on this node or another); this run is skipped")
			return RetentionReport{}, nil
		}
	}
	if err != nil {
		return RetentionReport{}, err
	}
	defer unlock()

	started := s.now()
	report := RetentionReport{Started: started}
	accounts, err := s.store.List()
	if err != nil {
		return report, err
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, a := range accounts {
		password, err := s.sealer.open(a.User, a.Secret)
		if err != nil {
			report.Repositories = append(report.Repositories, RepoReport{User: a.User, Error: err.Error()})
			continue
		}
		s.retryPendingKeys(ctx, a.User, password)
		insts, err := s.instances(a.User)
		if err != nil {
			report.Repositories = append(report.Repositories, RepoReport{User: a.User, Error: err.Error()})
			continue
		}
		for _, inst := range insts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.acquire(ctx); err != nil {
					return
				}
				defer s.release()
				r := s.retainRepo(ctx, a.User, password, inst)
				mu.Lock()
				report.Repositories = append(report.Repositories, r)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	// Pruning gave space back: count each player's usage afresh.
	for _, a := range accounts {
		if _, err := s.recount(a.User); err != nil {
			s.log.Printf("retention: usage of %s: %v", a.User, err)
		}
	}
	sort.Slice(report.Repositories, func(i, j int) bool {
		a, b := report.Repositories[i], report.Repositories[j]
		if a.User != b.User {
			return a.User < b.User
		}
		return a.Instance < b.Instance
	})
	for _, r := range report.Repositories {
		report.Removed += len(r.Removed)
		if r.Error != "" {
			report.Errors++
			s.log.Printf("retention: %s/%s: %s", r.User, r.Instance, r.Error)
		}
	}
	report.Duration = s.now().Sub(started).Round(time.Millisecond).String()
	result := "ok"
	if report.Errors > 0 {
		result = "error"
	}
	s.metrics.retentionRuns.WithLabelValues(result).Inc()
	s.log.Printf("retention: %d repositories, %d snapshots removed, %d errors, %s", len(report.Repositories), report.Removed, report.Errors, report.Duration)
	return report, ctx.Err()
}

// retentionScheduler is the store lock held, for as long as it lives, by
// the one node whose schedule runs retention; the others try to take it at
// each interval and so take over when that node stops or dies (its
// PostgreSQL session ends, and the lock with it).
const retentionScheduler = "retention scheduler"

// retentionLoop runs retention every interval until ctx ends, on the node
// holding the scheduler lock.
func (s *Service) retentionLoop(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	var leader func()
	defer func() {
		if leader != nil {
			leader()
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if leader == nil {
				unlock, ok, err := s.store.TryLock(ctx, retentionScheduler)
				if err != nil || !ok {
					continue // another node schedules retention
				}
				leader = unlock
				s.log.Printf("retention: this node runs the schedule (every %s)", interval)
			}
			if _, err := s.runRetention(ctx, false); err != nil && ctx.Err() == nil {
				s.log.Printf("retention: %v", err)
			}
		}
	}
}
