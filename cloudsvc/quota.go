package cloudsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// Storage quotas. Usage is counted in the store, not derived from the disk
// at upload time: a walk of a player's repositories per upload would cost a
// stat per file (slow on NFS), while one guarded UPDATE in PostgreSQL is
// atomic across nodes, so two nodes can never both accept the upload that
// passes the limit. The count is reserved before the rest-server handler
// writes anything and given back when the write fails; retention, the
// quota admin call and account deletion set it again from a walk of the
// shared storage, which corrects what a killed node's reservations left.

// quotaOf is the limit in bytes for a, 0 for none.
func (s *Service) quotaOf(a Account) int64 {
	switch {
	case a.Quota > 0:
		return a.Quota
	case a.Quota < 0:
		return 0
	}
	return max(s.cfg.DefaultQuota, 0)
}

// countedUpload reports whether a public request stores data that counts
// against the quota: every POST of a repository file except lock files,
// which restic removes again and which a player whose storage is full still
// needs to restore.
func countedUpload(r *http.Request, segs []string) bool {
	return r.Method == http.MethodPost && len(segs) >= 3 && segs[2] != "locks" && segs[2] != ""
}

// StorageFullMessage is what a player is told; instance-sync prints the same
// (remote.StorageFullError).
func StorageFullMessage(used, quota int64) string {
	return (&remote.StorageFullError{Used: used, Quota: quota}).Error()
}

// FormatSize writes n bytes in decimal units with one decimal ("10.0 GB").
func FormatSize(n int64) string { return remote.DecimalSize(n) }

// ParseSize reads a size: plain bytes or a number with B, kB/KB, MB, GB,
// TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}[unit]
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || f < 0 || f*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size; write it like 10GB, 500MiB or 0", s)
	}
	return int64(f * mult), nil
}

// reserve counts an upload of r against user's quota before anything is
// written. It returns a function giving the reservation back (when the write
// fails) or false after answering 507 / 411 itself.
func (h *publicHandler) reserve(w http.ResponseWriter, r *http.Request, a Account) (release func(), ok bool) {
	n := r.ContentLength
	if n < 0 {
		http.Error(w, "411 length required: uploads must say their size (Content-Length)", http.StatusLengthRequired)
		return nil, false
	}
	limit := h.s.quotaOf(a)
	used, err := h.s.store.AddUsage(a.User, n, limit)
	if errors.Is(err, ErrQuota) {
		h.s.metrics.quotaRefusals.Inc()
		http.Error(w, "507 insufficient storage: "+StorageFullMessage(used, limit), http.StatusInsufficientStorage)
		return nil, false
	}
	if err != nil {
		h.s.log.Printf("usage of %s: %v", a.User, err)
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return nil, false
	}
	return func() {
		if _, err := h.s.store.AddUsage(a.User, -n, 0); err != nil && !errors.Is(err, ErrNotFound) {
			h.s.log.Printf("usage of %s: give back %d bytes: %v", a.User, n, err)
		}
	}, true
}

// Storage is the answer of GET /<user>/.storage and part of the account
// listing.
type Storage struct {
	Used  int64 `json:"used_bytes"`
	Quota int64 `json:"quota_bytes"` // 0: no limit
}

func (h *publicHandler) serveStorage(w http.ResponseWriter, a Account) {
	used, err := h.s.store.Usage(a.User)
	if err != nil {
		h.s.log.Printf("usage of %s: %v", a.User, err)
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Storage{Used: used, Quota: h.s.quotaOf(a)})
}

// recount sets user's usage from a walk of their repositories.
func (s *Service) recount(user string) (int64, error) {
	insts, err := s.instances(user)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, id := range insts {
		size, _, _, err := repoUsage(s.repoPath(user, id))
		if err != nil {
			return 0, err
		}
		total += size
	}
	return total, s.store.SetUsage(user, total)
}

// handleQuota is PUT /accounts/{user}/quota {"bytes": N}: N > 0 a limit,
// 0 the server's default, -1 no limit. The answer recounts the usage.
func (s *Service) handleQuota(w http.ResponseWriter, r *http.Request) {
	user, ok := pathUser(w, r)
	if !ok {
		return
	}
	var req struct {
		Bytes *json.Number `json:"bytes"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var n int64
	err := dec.Decode(&req)
	if err == nil && req.Bytes == nil {
		err = errors.New("no bytes")
	}
	if err == nil {
		n, err = parseQuotaValue(string(*req.Bytes))
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("malformed request body: %v; send {\"bytes\": N} with N > 0 a limit, 0 the server default, -1 no limit", err))
		return
	}
	st, err := s.SetQuota(user, n)
	if err != nil {
		s.accountError(w, user, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": user, "quota": n, "used_bytes": st.Used, "quota_bytes": st.Quota})
}

func parseQuotaValue(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < -1 {
		return 0, fmt.Errorf("bytes %s is not an integer >= -1", v)
	}
	return n, nil
}

// SetQuota sets user's own limit (0: server default, -1: none) and recounts
// their usage from the disk.
func (s *Service) SetQuota(user string, quota int64) (Storage, error) {
	unlock, err := s.lockUser(context.Background(), user)
	if err != nil {
		return Storage{}, err
	}
	defer unlock()
	a, err := s.store.Get(user)
	if err != nil {
		return Storage{}, err
	}
	a.Quota = quota
	if err := s.store.Put(a); err != nil {
		return Storage{}, err
	}
	used, err := s.recount(user)
	if err != nil {
		return Storage{}, err
	}
	s.log.Printf("admin: quota of %s set to %d (effective %d bytes, %d used)", user, quota, s.quotaOf(a), used)
	return Storage{Used: used, Quota: s.quotaOf(a)}, nil
}
