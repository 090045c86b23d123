package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
)

// ErrNotFound is HTTP 404 for a file: the repository or the file is not
// on the server (any more).
var ErrNotFound = errors.New("not found on the server")

// ErrRefused is HTTP 403 to a write: the server will not replace a file
// it holds (the config above all: it is written once), or the account
// may not write.
var ErrRefused = errors.New("the server refused to write")

// CreateRepository asks the server to create an instance's repository:
// its folders, as restic's init does first. A repository that exists is
// left as it is.
func (s Server) CreateRepository(ctx context.Context, instanceID string) error {
	resp, err := s.send(ctx, http.MethodPost, s.repoPath(instanceID, "")+"?create=true", "", "", []byte{})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s.statusError(resp, "creating the repository of "+instanceID, "")
	}
	return nil
}

// SaveFile uploads rel (the config, or keys/<id>) of an instance's
// repository. A 403 gives ErrRefused.
func (s Server) SaveFile(ctx context.Context, instanceID, rel string, data []byte) error {
	resp, err := s.send(ctx, http.MethodPost, s.repoPath(instanceID, rel), "Content-Type", "application/octet-stream", data)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		return nil
	case http.StatusForbidden:
		return fmt.Errorf("%w: %s of %s on %s", ErrRefused, rel, instanceID, s.base())
	}
	return s.statusError(resp, "writing "+rel+" of "+instanceID, "")
}

// maxSnapshotFile bounds a snapshot file's download. restic's are a few
// hundred bytes; a server that sends more is not serving one.
const maxSnapshotFile = 16 << 20

// SnapshotFile downloads snapshots/<id> of an instance's repository, as
// stored: still encrypted (see package repofile).
func (s Server) SnapshotFile(ctx context.Context, instanceID, id string) ([]byte, error) {
	// The id becomes part of the path: only a snapshot id may.
	if !isHexID(id) {
		return nil, fmt.Errorf("%q is not a snapshot id", id)
	}
	return s.repoFile(ctx, instanceID, "snapshots/"+id, "snapshot "+id[:8], maxSnapshotFile)
}

// maxRepoFile bounds one download of an index file or a stretch of a pack
// file: restic writes packs of at most 128 MiB and indexes far smaller.
const maxRepoFile = 128 << 20

// ListFiles lists the names of <repo>/<kind>/ (kind "index", "data", …)
// with REST API v2.
func (s Server) ListFiles(ctx context.Context, instanceID, kind string) ([]string, error) {
	entries, found, err := s.list(ctx, instanceID, kind, 64<<20)
	if err != nil {
		if errors.As(err, new(unreadableListing)) {
			return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: %s/ of %s on %s", ErrNotFound, kind, instanceID, s.base())
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
	}
	return names, nil
}

// ReadFile downloads <repo>/<kind>/<id>, all of it when length is 0, else
// length bytes from offset, as stored (encrypted; see package repofile).
func (s Server) ReadFile(ctx context.Context, instanceID, kind, id string, offset, length int64) ([]byte, error) {
	if !isHexID(id) {
		return nil, fmt.Errorf("%q is not a file id", id)
	}
	if length > maxRepoFile || offset < 0 || length < 0 {
		return nil, fmt.Errorf("%s %s: %d bytes at %d is out of range", kind, id[:8], length, offset)
	}
	rng := ""
	if length > 0 {
		rng = fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
	}
	resp, err := s.doRange(ctx, s.repoPath(instanceID, kind+"/"+id), rng)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s %s of %s on %s", ErrNotFound, kind, id[:8], instanceID, s.base())
	default:
		return nil, s.statusError(resp, "reading "+kind+" "+id[:8], "")
	}
	if length > 0 && resp.StatusCode == http.StatusOK {
		return nil, fmt.Errorf("%s: the server ignored a range request for %s %s", s.base(), kind, id[:8])
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRepoFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading %s %s: %v", ErrUnreachable, s.base(), kind, id[:8], trimURL(err))
	}
	if len(b) > maxRepoFile || (length > 0 && int64(len(b)) != length) {
		return nil, fmt.Errorf("%s: %s %s: got %d bytes, want %d", s.base(), kind, id[:8], len(b), length)
	}
	return b, nil
}

// maxKeyFile bounds a key or config file's download (restic's are well
// under a kilobyte).
const maxKeyFile = 1 << 20

// ConfigFile downloads the config file of an instance's repository, as
// stored (encrypted with the master key). ErrNotFound when there is none.
func (s Server) ConfigFile(ctx context.Context, instanceID string) ([]byte, error) {
	return s.repoFile(ctx, instanceID, "config", "the repository config", maxKeyFile)
}

// KeyFile downloads keys/<id> of an instance's repository.
func (s Server) KeyFile(ctx context.Context, instanceID, id string) ([]byte, error) {
	if !isHexID(id) {
		return nil, fmt.Errorf("%q is not a key id", id)
	}
	return s.repoFile(ctx, instanceID, "keys/"+id, "key "+id[:8], maxKeyFile)
}

// ListKeys lists the ids in keys/ of an instance's repository, sorted.
// A repository that does not exist has none (no error).
func (s Server) ListKeys(ctx context.Context, instanceID string) ([]string, error) {
	entries, _, err := s.list(ctx, instanceID, "keys", 16<<20)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name)
	}
	sort.Strings(ids)
	return ids, nil
}

// listEntry is one file of a REST API v2 folder listing.
type listEntry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// unreadableListing is a listing answered 200 that is not one.
type unreadableListing struct{ error }

// list reads the REST API v2 listing of <repo>/<dir>/, of at most max
// bytes: the files named by an id (nothing else is restic's). found is
// false when the server has no such folder (404).
func (s Server) list(ctx context.Context, instanceID, dir string, max int64) (entries []listEntry, found bool, err error) {
	resp, err := s.do(ctx, http.MethodGet, s.repoPath(instanceID, dir+"/"), "application/vnd.x.restic.rest.v2")
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, false, nil
	default:
		return nil, false, s.statusError(resp, "listing "+dir+"/", "")
	}
	var all []listEntry
	if err := json.NewDecoder(io.LimitReader(resp.Body, max)).Decode(&all); err != nil {
		return nil, false, unreadableListing{fmt.Errorf("%s: unreadable %s/ listing: %v", s.base(), dir, err)}
	}
	for _, e := range all {
		if isHexID(e.Name) {
			entries = append(entries, e)
		}
	}
	return entries, true, nil
}

// repoPath is the server path of rel (a file, or a folder ending in "/")
// in an instance's repository.
func (s Server) repoPath(instanceID, rel string) string {
	return "/" + url.PathEscape(s.User) + "/" + url.PathEscape(instanceID) + "/" + rel
}

// repoFile downloads rel (a path inside the repository) of at most max
// bytes; what names it for messages.
func (s Server) repoFile(ctx context.Context, instanceID, rel, what string, max int) ([]byte, error) {
	resp, err := s.do(ctx, http.MethodGet, s.repoPath(instanceID, rel), "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s of %s on %s", ErrNotFound, what, instanceID, s.base())
	default:
		return nil, s.statusError(resp, "reading "+what, "")
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading %s: %v", ErrUnreachable, s.base(), what, trimURL(err))
	}
	if len(b) > max {
		size := fmt.Sprintf("%d KiB", max>>10)
		if max%(1<<20) == 0 {
			size = fmt.Sprintf("%d MiB", max>>20)
		}
		return nil, fmt.Errorf("%s: %s is larger than %s", s.base(), what, size)
	}
	return b, nil
}
