package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// setUserSQL names the user that row-level security admits (migration
// 00003's policy on tasks reads app.user_id). is_local = true confines the
// setting to the current transaction, so it cannot outlive the request on a
// pooled connection, nor reach another client through PgBouncer.
const setUserSQL = `SELECT set_config('app.user_id', $1, true)`

// userConn runs statements on one pooled connection as one user. Each
// statement is sent in one pgx batch after set_config and any prelude
// statements: a batch ends in a single Sync, so PostgreSQL runs it as one
// implicit transaction. The setting holds for the statement, dies with its
// commit, and costs no extra round trip. A userConn without a user and
// without a prelude sends the statement alone.
type userConn struct {
	conn        *pgxpool.Conn
	userID      string
	withoutUser bool // benchmarks only: measure the cost of setting the user
	prelude     []statement
}

type statement struct {
	sql  string
	args []any
}

// then returns a copy of c that runs sql before every statement, in the
// same batch and so in the same transaction.
func (c *userConn) then(sql string, args ...any) *userConn {
	next := *c
	next.prelude = append(append([]statement(nil), c.prelude...), statement{sql, args})
	return &next
}

func (c *userConn) setsUser() bool {
	return c.userID != "" && !c.withoutUser
}

// send queues the user setting, the prelude and the statement, sends them
// and reads the results of all but the statement, whose results it leaves
// to the caller, who must close the batch.
func (c *userConn) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	if c.setsUser() {
		b.Queue(setUserSQL, c.userID)
	}
	for _, st := range c.prelude {
		b.Queue(st.sql, st.args...)
	}
	b.Queue(sql, args...)
	br := c.conn.SendBatch(ctx, b)
	for range b.Len() - 1 {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, err
		}
	}
	return br, nil
}

// Exec runs sql as c's user.
func (c *userConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if !c.setsUser() && len(c.prelude) == 0 {
		return c.conn.Exec(ctx, sql, args...)
	}
	br, err := c.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	// Close reads the end of the implicit transaction: a failed commit
	// surfaces here, and a write is acknowledged only after it.
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	return tag, err
}

// Query runs sql as c's user. The rows stream; closing them, or reading
// past the last one, ends the batch.
func (c *userConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if !c.setsUser() && len(c.prelude) == 0 {
		return c.conn.Query(ctx, sql, args...)
	}
	br, err := c.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		rows.Close()
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// QueryRow runs sql as c's user; Scan reports the commit's error too.
func (c *userConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if !c.setsUser() && len(c.prelude) == 0 {
		return c.conn.QueryRow(ctx, sql, args...)
	}
	br, err := c.send(ctx, sql, args)
	if err != nil {
		return errRow{err}
	}
	return batchRow{row: br.QueryRow(), br: br}
}

// batchRows are a batch's last statement's rows; they close the batch with
// themselves and report its error.
type batchRows struct {
	pgx.Rows
	br       pgx.BatchResults
	closed   bool
	closeErr error
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.closeErr = r.br.Close()
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.closeErr
}

type batchRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if closeErr := r.br.Close(); err == nil {
		err = closeErr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
