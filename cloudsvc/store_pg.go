package cloudsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgMigrations are applied in order; migration i brings the schema to
// version i+1. Append only: a released migration never changes.
var pgMigrations = []string{
	// 1: accounts, the instance-info cache, usage counters.
	`CREATE TABLE accounts (
		username    text PRIMARY KEY,
		hash        bytea NOT NULL,
		secret      bytea NOT NULL,
		disabled    boolean NOT NULL DEFAULT false,
		created     timestamptz NOT NULL,
		rotated     timestamptz,
		quota       bigint NOT NULL DEFAULT 0,
		pending_key_removals jsonb NOT NULL DEFAULT '[]'
	);
	CREATE TABLE instances (
		username  text NOT NULL REFERENCES accounts ON DELETE CASCADE,
		instance  text NOT NULL,
		newest    text NOT NULL,
		label     text NOT NULL DEFAULT '',
		host      text NOT NULL DEFAULT '',
		last_push timestamptz,
		PRIMARY KEY (username, instance)
	);
	CREATE TABLE usage (
		username text PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,
		bytes    bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0)
	);`,
}

// pgSchemaVersion is the newest schema this cloud-svc understands.
var pgSchemaVersion = len(pgMigrations)

// pgMigrationLock is the advisory lock key nodes starting together take
// while they migrate, so the schema is applied once.
const pgMigrationLock = "cloud-svc schema migration"

type pgStore struct {
	pool *pgxpool.Pool
}

// IsPostgresURL reports whether a --store value names PostgreSQL.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// CheckPostgresURL refuses a URL that carries a password: it would be in
// argv and in the process list. The password comes from $PGPASSWORD or a
// ~/.pgpass file instead, as for any PostgreSQL client.
func CheckPostgresURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--store: not a PostgreSQL URL; use postgres://USER@HOST:PORT/DB")
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		return errors.New("--store must not contain the database password (it would show in the process list); put it in $PGPASSWORD or ~/.pgpass")
	}
	return nil
}

// OpenPostgresStore connects, applies missing migrations and refuses a schema
// newer than this cloud-svc. password, when not empty, overrides the usual
// sources ($PGPASSWORD, ~/.pgpass).
func OpenPostgresStore(ctx context.Context, dsn, password string) (Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("account store: %v", err)
	}
	if password != "" {
		cfg.ConnConfig.Password = password
	}
	where := fmt.Sprintf("PostgreSQL %s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("account store %s: %v", where, err)
	}
	s := &pgStore{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("account store %s: %w", where, err)
	}
	return s, nil
}

func (s *pgStore) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey(pgMigrationLock)); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, lockKey(pgMigrationLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS cloudsvc_schema (version integer NOT NULL)`); err != nil {
		return err
	}
	var version int
	err = conn.QueryRow(ctx, `SELECT version FROM cloudsvc_schema`).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := conn.Exec(ctx, `INSERT INTO cloudsvc_schema (version) VALUES (0)`); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if version > pgSchemaVersion {
		return fmt.Errorf("schema version %d is newer than this cloud-svc understands (%d); run a newer cloud-svc", version, pgSchemaVersion)
	}
	for v := version; v < pgSchemaVersion; v++ {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, pgMigrations[v]); err != nil {
			tx.Rollback(ctx)
			return fmt.Errorf("migration to schema %d: %w", v+1, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE cloudsvc_schema SET version = $1`, v+1); err != nil {
			tx.Rollback(ctx)
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
	}
	return nil
}

// pgTimeout bounds each store call: the interface has no context, and a
// stuck database must end in an error, not a hung request.
const pgTimeout = 30 * time.Second

func pgCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), pgTimeout)
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *pgStore) Create(a Account) error {
	ctx, cancel := pgCtx()
	defer cancel()
	pending, err := json.Marshal(nonNilPending(a.PendingKeyRemovals))
	if err != nil {
		return err
	}
	// The usage row is born with the account, so AddUsage is a plain
	// guarded UPDATE.
	_, err = s.pool.Exec(ctx, `WITH a AS (
			INSERT INTO accounts (username, hash, secret, disabled, created, rotated, quota, pending_key_removals)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING username)
		INSERT INTO usage (username, bytes) SELECT username, 0 FROM a`,
		a.User, a.Hash, a.Secret, a.Disabled, a.Created, nullTime(a.Rotated), a.Quota, pending)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return ErrExists
	}
	return err
}

func nonNilPending(p []PendingKey) []PendingKey {
	if p == nil {
		return []PendingKey{}
	}
	return p
}

const accountColumns = `username, hash, secret, disabled, created, rotated, quota, pending_key_removals`

func scanAccount(row pgx.Row) (Account, error) {
	var (
		a       Account
		rotated *time.Time
		pending []byte
	)
	if err := row.Scan(&a.User, &a.Hash, &a.Secret, &a.Disabled, &a.Created, &rotated, &a.Quota, &pending); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Account{}, ErrNotFound
		}
		return Account{}, err
	}
	if rotated != nil {
		a.Rotated = *rotated
	}
	if err := json.Unmarshal(pending, &a.PendingKeyRemovals); err != nil {
		return Account{}, fmt.Errorf("account %q: %w", a.User, err)
	}
	if len(a.PendingKeyRemovals) == 0 {
		a.PendingKeyRemovals = nil
	}
	return a, nil
}

func (s *pgStore) Get(user string) (Account, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	return scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE username = $1`, user))
}

func (s *pgStore) Put(a Account) error {
	ctx, cancel := pgCtx()
	defer cancel()
	pending, err := json.Marshal(nonNilPending(a.PendingKeyRemovals))
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE accounts SET hash = $2, secret = $3, disabled = $4, created = $5, rotated = $6, quota = $7, pending_key_removals = $8
		WHERE username = $1`,
		a.User, a.Hash, a.Secret, a.Disabled, a.Created, nullTime(a.Rotated), a.Quota, pending)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *pgStore) Delete(user string) error {
	ctx, cancel := pgCtx()
	defer cancel()
	// instances and usage go with the account (ON DELETE CASCADE).
	tag, err := s.pool.Exec(ctx, `DELETE FROM accounts WHERE username = $1`, user)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *pgStore) List() ([]Account, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY username`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *pgStore) GetInstance(user, id string) (InstanceInfo, bool, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	var (
		info InstanceInfo
		last *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT newest, label, host, last_push FROM instances WHERE username = $1 AND instance = $2`, user, id).
		Scan(&info.Newest, &info.Label, &info.Host, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return InstanceInfo{}, false, nil
	}
	if err != nil {
		return InstanceInfo{}, false, err
	}
	if last != nil {
		info.LastPush = *last
	}
	return info, true, nil
}

func (s *pgStore) PutInstance(user, id string, info InstanceInfo) error {
	ctx, cancel := pgCtx()
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO instances (username, instance, newest, label, host, last_push) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (username, instance) DO UPDATE SET newest = EXCLUDED.newest, label = EXCLUDED.label, host = EXCLUDED.host, last_push = EXCLUDED.last_push`,
		user, id, info.Newest, info.Label, info.Host, nullTime(info.LastPush))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation: the account is gone
		return ErrNotFound
	}
	return err
}

func (s *pgStore) Usage(user string) (int64, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT bytes FROM usage WHERE username = $1`, user).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// AddUsage is one statement, so two nodes reserving for the same player at
// once are serialised by the row lock and never pass the limit together.
func (s *pgStore) AddUsage(user string, n, limit int64) (int64, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	var used int64
	err := s.pool.QueryRow(ctx, `UPDATE usage SET bytes = GREATEST(bytes + $2::bigint, 0)
		WHERE username = $1 AND ($2::bigint <= 0 OR $3::bigint <= 0 OR bytes + $2::bigint <= $3::bigint)
		RETURNING bytes`, user, n, limit).Scan(&used)
	if errors.Is(err, pgx.ErrNoRows) {
		// Either the guard refused or there is no such account.
		if _, err := s.Get(user); err != nil {
			return 0, err
		}
		cur, err := s.Usage(user)
		if err != nil {
			return 0, err
		}
		return cur, ErrQuota
	}
	return used, err
}

func (s *pgStore) SetUsage(user string, n int64) error {
	ctx, cancel := pgCtx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE usage SET bytes = $2 WHERE username = $1`, user, max(n, 0))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// lockKey maps a lock name to PostgreSQL's 64-bit advisory lock key space.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("cloud-svc/" + name))
	return int64(h.Sum64())
}

// Lock takes a session-level advisory lock on a connection of its own; the
// lock lives as long as that connection, so a node that dies releases it.
func (s *pgStore) Lock(ctx context.Context, name string) (func(), error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey(name)); err != nil {
		// The wait may have been cancelled half-way: drop the connection
		// rather than return it with the lock possibly taken.
		conn.Hijack().Close(context.Background())
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return s.unlocker(conn, name), nil
}

func (s *pgStore) TryLock(ctx context.Context, name string) (func(), bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(name)).Scan(&ok); err != nil {
		conn.Hijack().Close(context.Background())
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return s.unlocker(conn, name), true, nil
}

func (s *pgStore) unlocker(conn *pgxpool.Conn, name string) func() {
	return func() {
		ctx, cancel := pgCtx()
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey(name)); err != nil {
			// Closing the session releases the lock for sure.
			conn.Hijack().Close(context.Background())
			return
		}
		conn.Release()
	}
}

func (s *pgStore) Shared() bool { return true }

func (s *pgStore) Close() error {
	s.pool.Close()
	return nil
}
