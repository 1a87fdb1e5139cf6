package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group commit. Every write is an operation handed to one writer goroutine,
// which runs whatever operations are queued together in one transaction and
// answers their callers only after its COMMIT, which synchronous=FULL makes
// durable. One fsync then pays for a whole batch instead of one write: at
// 100 concurrent writers that is the difference between about 1,500 and
// well over 2,000 creates a second.
//
// Each operation runs inside its own SAVEPOINT, so that one operation's
// failure (a unique email, a statement error) undoes only its own changes
// and the rest of the batch still commits.

// maxBatch bounds how many operations share one transaction, so that a
// flood of writers cannot grow one commit, and the wait of its first
// caller, without limit.
const maxBatch = 256

// errClosed answers writes that arrive after Close.
var errClosed = errors.New("sqlite database is closed")

// The states of a writeOp. The writer claims an operation (queued → running)
// before it runs it; a caller whose context ends claims it first (queued →
// abandoned), so an operation either runs and is answered, or never runs.
const (
	opQueued int32 = iota
	opRunning
	opAbandoned
)

// writeOp is one caller's write waiting for the writer goroutine.
type writeOp struct {
	// run makes the operation's changes in tx. Its error is the caller's
	// answer; its changes are rolled back when it returns one.
	run   func(ctx context.Context, tx *sql.Tx) error
	state atomic.Int32
	done  chan error // buffered: the writer never blocks on an answer
}

var writeOpPool = sync.Pool{New: func() any { return &writeOp{done: make(chan error, 1)} }}

// write hands run to the writer goroutine and waits until the transaction
// that ran it has committed, or run has failed. op names the operation in
// errors. When ctx ends before run has started, run never runs and write
// returns ctx's error; once it has started, write waits for the answer
// (one batch: milliseconds).
func (db *DB) write(ctx context.Context, op string, run func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	w := writeOpPool.Get().(*writeOp)
	w.run = run
	w.state.Store(opQueued)
	select {
	case db.writes <- w:
	case <-ctx.Done():
		w.run = nil
		writeOpPool.Put(w)
		return fmt.Errorf("%s: %w", op, ctx.Err())
	case <-db.closing:
		w.run = nil
		writeOpPool.Put(w)
		return fmt.Errorf("%s: %w", op, errClosed)
	}
	var err error
	select {
	case err = <-w.done:
	case <-ctx.Done():
		if w.state.CompareAndSwap(opQueued, opAbandoned) {
			// The writer still holds w and will drop it: not reusable.
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		err = <-w.done
	}
	w.run = nil
	writeOpPool.Put(w)
	return err
}

// writeLoop is the writer goroutine: it takes the first queued operation,
// every other one already waiting, runs them as one batch, and repeats
// until Close.
func (db *DB) writeLoop() {
	defer close(db.writerDone)
	batch := make([]*writeOp, 0, maxBatch)
	for {
		select {
		case w := <-db.writes:
			batch = append(batch, w)
		case <-db.closing:
			return
		}
	collect:
		for len(batch) < maxBatch {
			select {
			case w := <-db.writes:
				batch = append(batch, w)
			default:
				break collect
			}
		}
		db.runBatch(batch)
		clear(batch)
		batch = batch[:0]
	}
}

// runBatch runs the operations whose callers still wait in one
// transaction and answers each of them after COMMIT.
func (db *DB) runBatch(batch []*writeOp) {
	live := batch[:0]
	for _, w := range batch {
		if w.state.CompareAndSwap(opQueued, opRunning) {
			live = append(live, w)
		}
	}
	if len(live) == 0 {
		return
	}
	// Statements run without the callers' contexts: a caller that gives up
	// now must not interrupt the statements of the others, and a context
	// with no Done channel spares the driver a watcher goroutine per
	// statement. Callers that gave up in time were skipped above.
	ctx := context.Background()
	errs := make([]error, len(live))
	if err := db.runInTx(ctx, live, errs); err != nil {
		err = wrapError("commit writes", err)
		for i := range errs {
			errs[i] = err
		}
	}
	for i, w := range live {
		w.done <- errs[i]
	}
}

// runInTx runs each operation in a savepoint of one transaction, putting
// its own error in errs, and commits. An error it returns means nothing
// was committed.
func (db *DB) runInTx(ctx context.Context, ops []*writeOp, errs []error) (err error) {
	// The writer pool's one connection is free only between transactions.
	db.writeStmts.prepareMissed(ctx)
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if len(ops) == 1 {
		// Alone in its transaction, an operation needs no savepoint: when
		// it fails, the whole transaction is rolled back instead.
		if errs[0] = ops[0].run(ctx, tx); errs[0] != nil {
			tx.Rollback()
			return nil
		}
		return tx.Commit()
	}
	for i, w := range ops {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT op`); err != nil {
			return err
		}
		if errs[i] = w.run(ctx, tx); errs[i] != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO op`); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE op`); err != nil {
			return err
		}
	}
	return tx.Commit()
}
