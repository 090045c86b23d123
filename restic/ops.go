package restic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
)

// Snapshot is restic's view of a snapshot (the fields we use).
type Snapshot struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
	Tags     []string  `json:"tags"`
	Tree     string    `json:"tree,omitempty"` // the root tree's blob id
	// Original is the id the snapshot was first written under, when
	// "restic tag" wrote it again since.
	Original string `json:"original,omitempty"`
	Summary  *struct {
		TotalFilesProcessed int64 `json:"total_files_processed"`
		TotalBytesProcessed int64 `json:"total_bytes_processed"`
	} `json:"summary"`
}

// Init creates the repository.
func (c *Client) Init(ctx context.Context) error {
	return c.run(ctx, "init", false, []string{"init"}, nil)
}

// BackupOptions describe one backup, run from Client.Dir.
type BackupOptions struct {
	FilesFrom   string   // file of NUL-terminated paths, relative to Dir (--files-from-raw)
	ExcludeFile string   // optional --exclude-file
	Host        string   // --host
	Tags        []string // each becomes one --tag
	Parent      string   // optional --parent, speeds up change detection
	// Files is how many files the backup must hold (0: not checked).
	// restic skips a listed path it cannot find with only a warning; a
	// backup with fewer files is reported as ErrPartial.
	Files int
}

// BackupSummary is restic's summary of a backup.
type BackupSummary struct {
	SnapshotID string `json:"snapshot_id"`
	FilesNew   int64  `json:"files_new"`
	FilesChg   int64  `json:"files_changed"`
	DataAdded  int64  `json:"data_added"`
	// DataAddedPacked is what the backup uploaded: new data, compressed.
	DataAddedPacked int64 `json:"data_added_packed"`
	TotalFiles      int64 `json:"total_files_processed"`
	TotalBytes      int64 `json:"total_bytes_processed"`
	// BackupStart is the snapshot's own time: restic stamps the snapshot
	// with the moment the backup started (without --time).
	BackupStart time.Time `json:"backup_start"`
}

// Backup runs restic backup. On exit code 3 (some files unreadable) the
// summary is still returned together with an error wrapping ErrPartial.
func (c *Client) Backup(ctx context.Context, o BackupOptions, onStatus func(Status)) (BackupSummary, error) {
	args := []string{"backup", "--files-from-raw", o.FilesFrom, "--host", o.Host}
	if o.ExcludeFile != "" {
		args = append(args, "--exclude-file", o.ExcludeFile)
	}
	if o.Parent != "" {
		// The parent may come from another computer (the last sync was a
		// pull): its inodes and ctimes never match here, and restic would
		// re-read every file. Size and mtime are what the manifest trusts too.
		args = append(args, "--parent", o.Parent, "--ignore-inode", "--ignore-ctime")
	}
	for _, t := range o.Tags {
		args = append(args, "--tag", t)
	}
	var sum BackupSummary
	var prev Status
	err := c.run(ctx, "backup", true, args, func(mt string, raw []byte) bool {
		switch mt {
		case "status":
			return statusMoved(raw, &prev, onStatus)
		case "summary":
			_ = json.Unmarshal(raw, &sum)
			return true
		}
		return false
	})
	if err != nil && !(errors.Is(err, ErrPartial) && sum.SnapshotID != "") {
		return BackupSummary{}, err
	}
	if err == nil && o.Files > 0 && sum.TotalFiles < int64(o.Files) {
		err = &Error{Op: "backup", Kind: ErrPartial,
			Message: fmt.Sprintf("backed up %d of the %d files in the sync scope (restic's warnings above name the others)", sum.TotalFiles, o.Files)}
	}
	return sum, err
}

// Snapshots returns the snapshots with the given ids (all when none).
// restic prints the list as one JSON array line.
func (c *Client) Snapshots(ctx context.Context, ids ...string) ([]Snapshot, error) {
	var out []Snapshot
	args := append([]string{"snapshots", "--no-lock"}, ids...)
	err := c.runLines(ctx, "snapshots", false, args, nil, func(line []byte) bool {
		var batch []Snapshot
		if json.Unmarshal(line, &batch) != nil {
			return false
		}
		out = append(out, batch...)
		return true
	})
	return out, err
}

// RestoreOptions describe one restore.
type RestoreOptions struct {
	Target string
	// Includes limits the restore to these snapshot paths ("/saves") and
	// what lies below them.
	Includes []string
	// OnItem is called for every file and folder in the snapshot with its
	// path relative to the target (slash-separated, no leading slash) and
	// restic's action (restored, updated, unchanged).
	OnItem func(path, action string, size int64)
}

// Restore restores snapshot id into Target, skipping files that are
// already identical. It never deletes anything.
func (c *Client) Restore(ctx context.Context, id string, o RestoreOptions, onStatus func(Status)) error {
	args := []string{"restore", id, "--target", o.Target, "--overwrite", "if-changed"}
	if o.OnItem != nil {
		args = append(args, "-vv") // a line for every item
	}
	for _, inc := range o.Includes {
		args = append(args, "--include", inc)
	}
	var prev Status
	return c.run(ctx, "restore", true, args, func(mt string, raw []byte) bool {
		switch mt {
		case "status":
			return statusMoved(raw, &prev, onStatus)
		case "verbose_status":
			if o.OnItem == nil {
				return true
			}
			var v struct {
				Action string `json:"action"`
				Item   string `json:"item"`
				Size   int64  `json:"size"`
			}
			if json.Unmarshal(raw, &v) == nil {
				o.OnItem(itemPath(v.Item), v.Action, v.Size)
			}
			return true
		}
		return false
	})
}

// Unlock removes stale locks.
func (c *Client) Unlock(ctx context.Context) error {
	return c.run(ctx, "unlock", false, []string{"unlock"}, nil)
}

// statusMoved reports a status line and whether it shows progress since
// the previous one: restic keeps printing status while it retries a dead
// server, so only moving numbers count.
func statusMoved(raw []byte, prev *Status, onStatus func(Status)) bool {
	var s Status
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	if onStatus != nil {
		onStatus(s)
	}
	moved := s.PercentDone != prev.PercentDone || s.BytesDone != prev.BytesDone || s.FilesDone != prev.FilesDone ||
		s.BytesRest != prev.BytesRest || s.FilesRest != prev.FilesRest
	*prev = s
	return moved
}

// itemPath turns restic's item path ("/saves/W/level.dat", backslashes on
// Windows) into a slash-separated path relative to the restore target.
func itemPath(item string) string {
	if runtime.GOOS == "windows" {
		item = strings.ReplaceAll(item, `\`, "/")
	}
	return strings.TrimPrefix(item, "/")
}
