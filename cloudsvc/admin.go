package cloudsvc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// AdminHandler is the admin port: bearer-token protected provisioning and
// maintenance. Every answer is JSON; errors are {"error": "..."}.
func (s *Service) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /accounts", s.handleCreate)
	mux.HandleFunc("GET /accounts", s.handleList)
	mux.HandleFunc("POST /accounts/{user}/rotate", s.handleRotate)
	mux.HandleFunc("POST /accounts/{user}/disable", s.handleSetDisabled(true))
	mux.HandleFunc("POST /accounts/{user}/enable", s.handleSetDisabled(false))
	mux.HandleFunc("DELETE /accounts/{user}", s.handleDelete)
	mux.HandleFunc("PUT /accounts/{user}/quota", s.handleQuota)
	mux.HandleFunc("POST /retention", s.handleRetention)
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no admin endpoint %s %s; see the README for the admin API", r.Method, r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() { s.metrics.adminRequests.WithLabelValues(strconv.Itoa(rec.code)).Inc() }()
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.adminToken)) != 1 {
			rec.Header().Set("WWW-Authenticate", `Bearer realm="cloud-svc admin"`)
			writeError(rec, http.StatusUnauthorized, "missing or wrong admin token; send Authorization: Bearer <content of the admin token file>")
			return
		}
		mux.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// accountError maps store errors to HTTP codes.
func (s *Service) accountError(w http.ResponseWriter, user string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("account %s does not exist", user))
	case errors.Is(err, ErrExists):
		writeError(w, http.StatusConflict, fmt.Sprintf("account %s already exists; rotate its password instead", user))
	case errors.Is(err, errNoRestic):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		s.log.Printf("admin: %s: %v", user, err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// pathUser validates the {user} path segment; false means a 400 was written.
func pathUser(w http.ResponseWriter, r *http.Request) (string, bool) {
	u := r.PathValue("user")
	if !validUser(u) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid user name %q; use 1-64 of a-z 0-9 _ - starting with a letter or digit", u))
		return "", false
	}
	return u, true
}

// TokenResponse is returned once when an account is created or rotated.
type TokenResponse struct {
	User     string   `json:"user"`
	Token    string   `json:"token"`
	URL      string   `json:"url"`
	Warnings []string `json:"warnings,omitempty"`
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User  string `json:"user"`
		Quota int64  `json:"quota"` // as PUT /accounts/{user}/quota
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("malformed request body: %v; send {\"user\": \"NAME\"}", err))
		return
	}
	if !validUser(req.User) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid user name %q; use 1-64 of a-z 0-9 _ - starting with a letter or digit", req.User))
		return
	}
	if req.Quota < -1 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("quota %d: use N > 0 bytes, 0 for the server default or -1 for no limit", req.Quota))
		return
	}
	resp, err := s.CreateAccount(req.User, req.Quota)
	if err != nil {
		s.accountError(w, req.User, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

// CreateAccount provisions user and returns its token, the only time the
// password is ever shown.
func (s *Service) CreateAccount(user string, quota int64) (TokenResponse, error) {
	unlock, err := s.lockUser(context.Background(), user)
	if err != nil {
		return TokenResponse{}, err
	}
	defer unlock()
	password, err := randomString(24)
	if err != nil {
		return TokenResponse{}, err
	}
	a := Account{User: user, Created: s.now().UTC(), Quota: quota}
	if err := s.setPassword(&a, password); err != nil {
		return TokenResponse{}, err
	}
	if err := s.store.Create(a); err != nil {
		return TokenResponse{}, err
	}
	s.metrics.accountsCreated.Inc()
	s.log.Printf("admin: created account %s", user)
	return TokenResponse{User: user, Token: user + ":" + password, URL: s.cfg.PublicURL}, nil
}

func (s *Service) setPassword(a *Account, password string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
	if err != nil {
		return err
	}
	sealed, err := s.sealer.seal(a.User, password)
	if err != nil {
		return err
	}
	a.Hash, a.Secret = hash, sealed
	return nil
}

// AccountInfo is one entry of GET /accounts.
type AccountInfo struct {
	User      string     `json:"user"`
	Disabled  bool       `json:"disabled"`
	Created   time.Time  `json:"created"`
	Bytes     int64      `json:"bytes"`       // on disk now (a walk)
	Used      int64      `json:"used_bytes"`  // what the quota counts
	Quota     int64      `json:"quota_bytes"` // effective limit, 0 none
	Instances int        `json:"instances"`
	LastPush  *time.Time `json:"last_push"`
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	list, err := s.ListAccounts()
	if err != nil {
		s.accountError(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// ListAccounts walks each player's repositories for bytes used and the newest
// snapshot; a walk is cheap next to a restic run and always current.
func (s *Service) ListAccounts() ([]AccountInfo, error) {
	accounts, err := s.store.List()
	if err != nil {
		return nil, err
	}
	out := make([]AccountInfo, 0, len(accounts))
	for _, a := range accounts {
		info := AccountInfo{User: a.User, Disabled: a.Disabled, Created: a.Created, Quota: s.quotaOf(a)}
		if info.Used, err = s.store.Usage(a.User); err != nil {
			return nil, err
		}
		insts, err := s.instances(a.User)
		if err != nil {
			return nil, err
		}
		info.Instances = len(insts)
		var last time.Time
		for _, id := range insts {
			size, _, t, err := repoUsage(s.repoPath(a.User, id))
			if err != nil {
				return nil, err
			}
			info.Bytes += size
			if t.After(last) {
				last = t
			}
		}
		if !last.IsZero() {
			last = last.UTC()
			info.LastPush = &last
		}
		out = append(out, info)
	}
	return out, nil
}

func (s *Service) handleSetDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, ok := pathUser(w, r)
		if !ok {
			return
		}
		if err := s.SetDisabled(user, disabled); err != nil {
			s.accountError(w, user, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"user": user, "disabled": disabled})
	}
}

// SetDisabled refuses (or again accepts) user's requests; data is untouched.
func (s *Service) SetDisabled(user string, disabled bool) error {
	unlock, err := s.lockUser(context.Background(), user)
	if err != nil {
		return err
	}
	defer unlock()
	a, err := s.store.Get(user)
	if err != nil {
		return err
	}
	a.Disabled = disabled
	g := s.gate(user)
	g.Switch()
	defer g.Unlock()
	if err := s.store.Put(a); err != nil {
		return err
	}
	s.log.Printf("admin: account %s disabled=%v", user, disabled)
	return nil
}

func (s *Service) handleDelete(w http.ResponseWriter, r *http.Request) {
	user, ok := pathUser(w, r)
	if !ok {
		return
	}
	purge := false
	if v := r.URL.Query().Get("purge"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("purge=%q is not true or false", v))
			return
		}
		purge = b
	}
	kept, err := s.DeleteAccount(user, purge)
	if err != nil {
		s.accountError(w, user, err)
		return
	}
	resp := map[string]any{"user": user, "purged": purge}
	if kept != "" {
		resp["kept_at"] = kept
	}
	writeJSON(w, http.StatusOK, resp)
}

// DeleteAccount removes user. Without purge the repositories are moved to
// <data>/deleted/<user>-<time>, so the name can be given out again while the
// operator still has the data; with purge they are removed.
func (s *Service) DeleteAccount(user string, purge bool) (keptAt string, err error) {
	unlock, err := s.lockUser(context.Background(), user)
	if err != nil {
		return "", err
	}
	defer unlock()
	g := s.gate(user)
	g.Switch()
	defer g.Unlock()
	if err := s.store.Delete(user); err != nil {
		return "", err
	}
	dir := s.repoDirOf(user)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		s.log.Printf("admin: deleted account %s (no data)", user)
		return "", nil
	}
	if purge {
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("account deleted but its data at %s could not be removed: %w", dir, err)
		}
		s.log.Printf("admin: deleted account %s and purged its data", user)
		return "", nil
	}
	deleted := filepath.Join(s.cfg.DataDir, "deleted")
	if err := os.MkdirAll(deleted, 0o700); err != nil {
		return "", err
	}
	dest := filepath.Join(deleted, user+"-"+s.now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(dir, dest); err != nil {
		return "", fmt.Errorf("account deleted but its data could not be moved to %s: %w", dest, err)
	}
	s.log.Printf("admin: deleted account %s, data kept at %s", user, dest)
	return dest, nil
}

func (s *Service) handleRotate(w http.ResponseWriter, r *http.Request) {
	user, ok := pathUser(w, r)
	if !ok {
		return
	}
	resp, err := s.Rotate(r.Context(), user)
	if err != nil {
		s.accountError(w, user, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// Rotate gives user a new password and re-keys every repository of theirs
// locally, since the repository password is the token's password:
//
//  1. restic key add (opened with the old password) on every repository;
//     any failure removes the keys added so far and nothing changes;
//  2. the account switches to the new password, waiting for the player's
//     in-flight requests, so the old token stops working over HTTP;
//  3. repositories created meanwhile are re-keyed too, then restic key
//     remove drops the old key. A repository locked by a client keeps its
//     old key for now; retention retries (the old password is refused over
//     HTTP already).
func (s *Service) Rotate(ctx context.Context, user string) (TokenResponse, error) {
	unlock, err := s.lockUser(ctx, user)
	if err != nil {
		return TokenResponse{}, err
	}
	defer unlock()
	a, err := s.store.Get(user)
	if err != nil {
		return TokenResponse{}, err
	}
	oldPassword, err := s.sealer.open(user, a.Secret)
	if err != nil {
		return TokenResponse{}, err
	}
	newPassword, err := randomString(24)
	if err != nil {
		return TokenResponse{}, err
	}
	insts, err := s.instances(user)
	if err != nil {
		return TokenResponse{}, err
	}
	if len(insts) > 0 && (s.restic == nil || s.restic.bin == "") {
		return TokenResponse{}, errNoRestic
	}

	oldKeys := map[string]string{} // instance -> old key id
	rekey := func(id string) error {
		p := s.repoPath(user, id)
		keyID, err := s.restic.currentKeyID(ctx, p, oldPassword)
		if err != nil {
			return err
		}
		if err := s.restic.addKey(ctx, p, oldPassword, newPassword); err != nil {
			return err
		}
		oldKeys[id] = keyID
		return nil
	}
	for _, id := range insts {
		if err := rekey(id); err != nil {
			for done := range oldKeys {
				s.dropNewKey(ctx, user, done, oldPassword, newPassword)
			}
			return TokenResponse{}, fmt.Errorf("rotation of %s aborted, the old token still works: %w", user, err)
		}
	}

	updated := a
	if err := s.setPassword(&updated, newPassword); err != nil {
		return TokenResponse{}, err
	}
	updated.Rotated = s.now().UTC()
	g := s.gate(user)
	g.Switch()
	err = s.store.Put(updated)
	g.Unlock()
	if err != nil {
		for done := range oldKeys {
			s.dropNewKey(ctx, user, done, oldPassword, newPassword)
		}
		return TokenResponse{}, err
	}
	s.metrics.rotations.Inc()

	// The gate above waited for this node's requests of the player; other
	// nodes' are invisible here, so give a request they authenticated with
	// the old password just before the switch time to finish (and a
	// repository it created time to appear) before the re-scan below.
	if s.store.Shared() && s.cfg.RotationGrace > 0 {
		select {
		case <-time.After(s.cfg.RotationGrace):
		case <-ctx.Done():
		}
	}

	var warnings []string
	if later, err := s.instances(user); err == nil {
		for _, id := range later {
			if _, ok := oldKeys[id]; !ok {
				if err := rekey(id); err != nil {
					warnings = append(warnings, fmt.Sprintf("instance %s could not be re-keyed and is not readable with the new token: %v", id, err))
				}
			}
		}
	}
	var pending []PendingKey
	for id, keyID := range oldKeys {
		if err := s.restic.removeKey(ctx, s.repoPath(user, id), newPassword, keyID); err != nil {
			s.log.Printf("admin: rotate %s: old key of %s stays until the next retention run: %v", user, id, err)
			pending = append(pending, PendingKey{Instance: id, KeyID: keyID})
		}
	}
	if len(pending) > 0 {
		if cur, err := s.store.Get(user); err == nil {
			cur.PendingKeyRemovals = append(cur.PendingKeyRemovals, pending...)
			if err := s.store.Put(cur); err != nil {
				s.log.Printf("admin: rotate %s: %v", user, err)
			}
		}
		warnings = append(warnings, fmt.Sprintf("%d repositories were locked; their old key will be removed by the next retention run", len(pending)))
	}
	s.log.Printf("admin: rotated password of %s (%d repositories)", user, len(oldKeys))
	return TokenResponse{User: user, Token: user + ":" + newPassword, URL: s.cfg.PublicURL, Warnings: warnings}, nil
}

// dropNewKey undoes step 1 of a failed rotation on one repository.
func (s *Service) dropNewKey(ctx context.Context, user, id, oldPassword, newPassword string) {
	p := s.repoPath(user, id)
	newID, err := s.restic.currentKeyID(ctx, p, newPassword)
	if err == nil {
		err = s.restic.removeKey(ctx, p, oldPassword, newID)
	}
	if err != nil {
		s.log.Printf("admin: rotate %s: could not remove the unused new key from %s: %v", user, id, err)
	}
}

// retryPendingKeys removes old keys an earlier rotation left behind.
func (s *Service) retryPendingKeys(ctx context.Context, user, password string) {
	unlock, err := s.lockUser(ctx, user)
	if err != nil {
		return
	}
	defer unlock()
	a, err := s.store.Get(user)
	if err != nil || len(a.PendingKeyRemovals) == 0 {
		return
	}
	var left []PendingKey
	for _, pk := range a.PendingKeyRemovals {
		if _, err := os.Stat(s.repoPath(user, pk.Instance)); errors.Is(err, os.ErrNotExist) {
			continue // the repository is gone, and its key with it
		}
		if err := s.restic.removeKey(ctx, s.repoPath(user, pk.Instance), password, pk.KeyID); err != nil {
			left = append(left, pk)
			s.log.Printf("retention: old key of %s/%s: %v", user, pk.Instance, err)
		}
	}
	a.PendingKeyRemovals = left
	if err := s.store.Put(a); err != nil {
		s.log.Printf("retention: %s: %v", user, err)
	}
}

func (s *Service) handleRetention(w http.ResponseWriter, r *http.Request) {
	report, err := s.RunRetention(r.Context())
	if err != nil {
		s.accountError(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, report)
}
