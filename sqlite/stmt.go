package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCache keeps the prepared statements of one pool, by query text.
// Parsing and planning a statement costs about as much as running the list
// query itself; the profile of the mixed workload showed sqlite3_prepare_v2
// at a tenth of the server's CPU before statements were kept.
//
// database/sql prepares a *sql.Stmt again on each connection that first
// runs it, and keeps it there; SQLite re-prepares a statement by itself
// when a migration changes the schema under it.
type stmtCache struct {
	pool *sql.DB
	mu   sync.RWMutex
	m    map[string]*sql.Stmt
	// missed are queries a transaction ran unprepared: the writer pool's
	// one connection was busy with that transaction, so they are prepared
	// before the next one begins.
	missed map[string]bool
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, m: map[string]*sql.Stmt{}, missed: map[string]bool{}}
}

// lookup returns the prepared statement for query, or nil.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[query]
}

// get returns the prepared statement for query, preparing it on first use.
// Only for pools whose connections the caller does not hold.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if s := c.lookup(query); s != nil {
		return s, nil
	}
	s, err := c.pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.m[query]; prev != nil {
		s.Close()
		return prev, nil
	}
	c.m[query] = s
	return s, nil
}

// miss records a query that ran unprepared.
func (c *stmtCache) miss(query string) {
	c.mu.Lock()
	c.missed[query] = true
	c.mu.Unlock()
}

// prepareMissed prepares the queries that ran unprepared. A query that
// cannot be prepared yet (its table is not migrated) is tried again later.
func (c *stmtCache) prepareMissed(ctx context.Context) {
	c.mu.RLock()
	n := len(c.missed)
	c.mu.RUnlock()
	if n == 0 {
		return
	}
	c.mu.Lock()
	queries := make([]string, 0, len(c.missed))
	for q := range c.missed {
		queries = append(queries, q)
	}
	clear(c.missed)
	c.mu.Unlock()
	for _, q := range queries {
		c.get(ctx, q)
	}
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, s := range c.m {
		errs = append(errs, s.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

// readSlot waits, in arrival order, until a reader connection is free, and
// returns the function that frees the slot. database/sql hands a freed
// connection to a random waiter, which under load leaves some reads
// waiting far longer than others; blocked channel sends queue fairly.
func (db *DB) readSlot(ctx context.Context) (release func(), err error) {
	select {
	case db.readSlots <- struct{}{}:
		return func() { <-db.readSlots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// query runs a read on the reader pool through a prepared statement.
func (db *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := db.readStmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// txExec runs a statement in a write's transaction, prepared when it has
// run before.
func (db *DB) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if s := db.writeStmts.lookup(query); s != nil {
		return tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	db.writeStmts.miss(query)
	return tx.ExecContext(ctx, query, args...)
}

// txQuery is txExec for statements that return rows.
func (db *DB) txQuery(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if s := db.writeStmts.lookup(query); s != nil {
		return tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	db.writeStmts.miss(query)
	return tx.QueryContext(ctx, query, args...)
}
