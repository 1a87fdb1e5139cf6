package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// bench runs the scenarios for one engine.
type bench struct {
	o      *options
	engine string
	dir    string
	rep    *report
}

func (b *bench) run(ctx context.Context) error {
	o := b.o
	var errs []error
	if o.runs("list") || o.runs("mixed") || o.runs("bare") || o.runs("open") || o.runs("create") || o.runs("memory") {
		errs = append(errs, b.withDatabase(ctx, "main", b.runMain))
	}
	if o.runs("scale") && ctx.Err() == nil {
		errs = append(errs, b.withDatabase(ctx, "scale", b.runScale))
	}
	if o.runs("startup") && b.engine == "sqlite" && ctx.Err() == nil {
		errs = append(errs, b.runStartup(ctx))
	}
	return errors.Join(errs...)
}

// withDatabase runs fn on a fresh database that is dropped afterwards.
func (b *bench) withDatabase(ctx context.Context, name string, fn func(context.Context, *database) error) error {
	db, err := newDatabase(ctx, b.engine, b.dir, b.o.databaseURL, name)
	if err != nil {
		return err
	}
	err = fn(ctx, db)
	if dropErr := db.drop(); dropErr != nil {
		err = errors.Join(err, fmt.Errorf("drop database: %w", dropErr))
	}
	return err
}

// start starts todo-api on db, with extra environment.
func (b *bench) start(ctx context.Context, db *database, extra ...string) (*server, error) {
	srv, _, err := startServer(ctx, b.o.server, b.dir, serverEnv(db.url, append(slices.Clone(b.o.serverEnv), extra...)...))
	return srv, err
}

// stop stops srv and reports what its log says went wrong.
func (b *bench) stop(srv *server) error {
	for _, line := range srv.errorLines(5) {
		b.rep.failf("%s: server log: %s", b.engine, line)
	}
	if busy := strings.Count(srv.logTail(), "SQLITE_BUSY") + strings.Count(srv.logTail(), "database is locked"); busy > 0 {
		b.rep.failf("%s: server log mentions SQLITE_BUSY / database is locked %d times", b.engine, busy)
	}
	return srv.stop()
}

// users mints tokens for prefix0 … prefix(n-1) and returns them as users
// with no known tasks.
func (b *bench) users(ctx context.Context, db *database, prefix string, n int) ([]*user, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	tokens, err := mintTokens(ctx, b.o.server, b.dir, serverEnv(db.url), ids)
	if err != nil {
		return nil, err
	}
	users := make([]*user, n)
	for i := range users {
		users[i] = newUser(ids[i], tokens[i])
	}
	return users, nil
}

// measure runs one load phase and records the server's CPU and peak memory
// over it, and the generator's own CPU.
func (b *bench) measure(srv *server, scenario string, load func() (*recorder, time.Duration)) *phase {
	pid := srv.cmd.Process.Pid
	resetPeakRSS(pid)
	// CPU counts from the end of the warmup, like the requests: counted
	// from the start it overstated CPU per request by warmup/duration.
	type cpuSample struct{ server, self procStats }
	warm := make(chan cpuSample, 1)
	time.AfterFunc(b.o.warmup, func() {
		server, _ := readProcStats(pid)
		self, _ := readProcStats(os.Getpid())
		warm <- cpuSample{server, self}
	})
	rec, elapsed := load()
	after, _ := readProcStats(pid)
	self1, _ := readProcStats(os.Getpid())
	start := <-warm
	before, self0 := start.server, start.self
	p := &phase{
		engine: b.engine, scenario: scenario, rec: rec, elapsed: elapsed,
		serverCPU: after.cpu - before.cpu, genCPU: self1.cpu - self0.cpu, peakRSS: after.peakRSS,
	}
	b.rep.add(p)
	n, errs := rec.totals()
	b.o.logf("%s %s: %d requests, %.0f req/s, p99 %v, %d errors", b.engine, scenario, n, float64(n)/elapsed.Seconds(), summarize(rec.all()).p99, errs)
	return p
}

// runMain runs the load phases on one database: list-only (with the
// database's own ceiling), mixed closed loop, the same two against the
// bare-bones server, mixed open loop, creates, then the memory test, and on
// PostgreSQL list-only and mixed again in the pooler-safe modes.
func (b *bench) runMain(ctx context.Context, db *database) error {
	o := b.o
	srv, err := b.start(ctx, db)
	if err != nil {
		return err
	}
	defer func() {
		if srv != nil {
			b.stop(srv)
		}
	}()
	n := o.concurrency
	b.o.logf("%s: minting %d tokens and creating %d tasks through the API", b.engine, 3*n, 2*n*o.tasksPerUser)
	listUsers, err := b.users(ctx, db, "list-", n)
	if err != nil {
		return err
	}
	mixUsers, err := b.users(ctx, db, "mix-", n)
	if err != nil {
		return err
	}
	createUsers, err := b.users(ctx, db, "create-", n)
	if err != nil {
		return err
	}
	// The mixed load grows each user's list (10 % creates, 2 % deletes), so
	// the bare-bones server's mixed load gets users of its own that start
	// where todo-api's did.
	var bareMixUsers []*user
	if o.runs("bare") {
		if bareMixUsers, err = b.users(ctx, db, "bare-mix-", n); err != nil {
			return err
		}
	}
	if err := b.setup(srv, slices.Concat(listUsers, mixUsers, bareMixUsers), createUsers); err != nil {
		return err
	}

	var listPhase *phase
	if o.runs("list") {
		listPhase = b.measure(srv, "list-only", func() (*recorder, time.Duration) {
			return closedLoop(ctx, srv.base, listUsers, listOnly, o.warmup, o.duration)
		})
		// The database alone, same query, same users, same run, while the
		// server idles.
		var c ceiling
		if b.engine == "sqlite" {
			ids := make([]string, len(listUsers))
			for i, u := range listUsers {
				ids[i] = u.id
			}
			c, err = sqliteCeiling(ctx, db.path, ids, 16, o.duration)
		} else {
			var bin string
			if bin, err = findPgbench(o.pgbench); err == nil {
				c, err = pgbenchCeiling(ctx, bin, db.url, b.dir, "list-", len(listUsers), 16, o.duration)
			}
		}
		if err != nil {
			b.rep.failf("%s: ceiling: %v", b.engine, err)
		} else {
			listPhase.ceiling = &c
			b.o.logf("%s ceiling: %.0f queries/s (%s)", b.engine, c.qps, c.what)
		}
	}
	rate := o.rate
	if o.runs("mixed") {
		p := b.measure(srv, "mixed, closed loop", func() (*recorder, time.Duration) {
			return closedLoop(ctx, srv.base, mixUsers, mixed, o.warmup, o.duration)
		})
		if rate == 0 {
			rate = max(10, 0.6*p.rate())
		}
	}
	if o.runs("bare") && ctx.Err() == nil {
		if err := b.runBare(ctx, db, listUsers, bareMixUsers, listPhase); err != nil {
			b.rep.failf("%s: bare-bones server: %v", b.engine, err)
		}
	}
	if rate == 0 {
		rate = 1000
	}
	if o.runs("open") {
		var late int
		p := b.measure(srv, fmt.Sprintf("mixed, open loop %.0f/s", rate), func() (*recorder, time.Duration) {
			rec, d, l := openLoop(ctx, srv.base, mixUsers, rate, o.warmup, o.duration)
			late = l
			return rec, d
		})
		p.note = fmt.Sprintf("%d sends more than one interval behind schedule", late)
	}
	if o.runs("create") {
		b.measure(srv, "create-only", func() (*recorder, time.Duration) {
			return closedLoop(ctx, srv.base, createUsers, createOnly, o.warmup, o.duration)
		})
	}
	err = b.stop(srv)
	srv = nil
	if err != nil {
		return err
	}

	if o.runs("memory") && ctx.Err() == nil {
		if err := b.runMemory(ctx, db, listUsers); err != nil {
			b.rep.failf("%s: memory: %v", b.engine, err)
		}
	}
	if b.engine == "postgres" && (o.runs("list") || o.runs("mixed")) && ctx.Err() == nil {
		// The pooled path: what a PgBouncer in transaction mode (Neon's
		// -pooler host) forces, no prepared statements kept. A -pooler host
		// gets cache_describe by default; exec is measured with it, as the
		// mode older setups chose.
		for _, mode := range []string{"cache_describe", "exec"} {
			if err := b.runPooled(ctx, db, mode, listUsers, mixUsers, listPhase); err != nil {
				return err
			}
		}
	}
	return nil
}

// runPooled runs list-only and mixed again on a server whose statements go
// out in a pooler-safe mode.
func (b *bench) runPooled(ctx context.Context, db *database, mode string, listUsers, mixUsers []*user, listPhase *phase) error {
	o := b.o
	sep := "?"
	if strings.Contains(db.url, "?") {
		sep = "&"
	}
	url := db.url + sep + "default_query_exec_mode=" + mode
	pooledDB := *db
	pooledDB.url = url
	srv, err := b.start(ctx, &pooledDB)
	if err != nil {
		return err
	}
	defer b.stop(srv)
	if o.runs("list") {
		p := b.measure(srv, "list-only, "+mode+" mode", func() (*recorder, time.Duration) {
			return closedLoop(ctx, srv.base, listUsers, listOnly, o.warmup, o.duration)
		})
		if listPhase != nil {
			p.ceiling = listPhase.ceiling
		}
	}
	if o.runs("mixed") {
		b.measure(srv, "mixed, closed loop, "+mode+" mode", func() (*recorder, time.Duration) {
			return closedLoop(ctx, srv.base, mixUsers, mixed, o.warmup, o.duration)
		})
	}
	return nil
}

// runBare starts the bare-bones server on db, while todo-api idles, and
// runs list-only and mixed closed loop against it: the baseline of the
// report's comparison. The list users are those of todo-api's list-only
// phase, whose tasks it did not change; it shares that phase's ceiling.
func (b *bench) runBare(ctx context.Context, db *database, listUsers, mixUsers []*user, listPhase *phase) (err error) {
	o := b.o
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// Only what the bare-bones server reads, none of -server-env (meant
	// for todo-api): the baseline runs with Go's defaults.
	srv, _, err := startProcess(ctx, "bare-bones server", b.dir, serverEnv(db.url), exe, bareServerCommand)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.stop(srv)) }()
	p := b.measure(srv, "bare-bones: list-only", func() (*recorder, time.Duration) {
		return closedLoop(ctx, srv.base, listUsers, listOnly, o.warmup, o.duration)
	})
	p.bare = true
	if listPhase != nil {
		p.ceiling = listPhase.ceiling
	}
	p = b.measure(srv, "bare-bones: mixed, closed loop", func() (*recorder, time.Duration) {
		return closedLoop(ctx, srv.base, mixUsers, mixed, o.warmup, o.duration)
	})
	p.bare = true
	return nil
}

// setup creates each user's starting tasks through the API, one goroutine
// per user, and checks isolation: a user cannot read another's task.
func (b *bench) setup(srv *server, withTasks, without []*user) error {
	transport := newTransport(len(withTasks))
	defer transport.CloseIdleConnections()
	recs := make([]*recorder, len(withTasks))
	var wg sync.WaitGroup
	for i, u := range withTasks {
		recs[i] = &recorder{}
		wg.Go(func() {
			c := newClient(transport, srv.base)
			r := newRand(uint64(i) + 500)
			for range b.o.tasksPerUser {
				start := time.Now()
				done, err := c.create(u, r)
				recs[i].record(epCreate, done.Sub(start), err)
			}
			_, err := c.list(u)
			recs[i].record(epList, 0, err)
		})
	}
	wg.Wait()
	c := newClient(transport, srv.base)
	for _, u := range append(withTasks, without...) {
		// The first request of a user with no tasks yet creates its row.
		if len(u.tasks) == 0 {
			if _, err := c.list(u); err != nil {
				return fmt.Errorf("setup: first list of %s: %w", u.id, err)
			}
		}
	}
	rec := merge(recs)
	if _, errs := rec.totals(); errs > 0 {
		return fmt.Errorf("setup: %d errors: %s", errs, strings.Join(fmtErrs(rec), "; "))
	}
	if len(withTasks) > 1 && len(withTasks[1].tasks) > 0 {
		if err := c.checkNotFound(withTasks[0], withTasks[1].tasks[0]); err != nil {
			return fmt.Errorf("setup: isolation: %w", err)
		}
	}
	return nil
}

// rawConn is one keep-alive connection that the memory test drives by hand,
// so that it holds exactly one connection per entry.
type rawConn struct {
	conn net.Conn
	br   *bufio.Reader
	u    *user
	body []byte
}

// list sends GET /api/tasks for the connection's user and checks the answer.
func (rc *rawConn) list() error {
	req := fmt.Appendf(nil, "GET /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n\r\n", rc.u.auth)
	if _, err := rc.conn.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return err
	}
	rc.body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, rc.body)
	}
	if resp.Close {
		return errors.New("the server closed a keep-alive connection")
	}
	return checkList(rc.body, rc.u)
}

// runMemory opens o.conns keep-alive connections to a fresh server
// process, each sending one list request; keeps them open, o.activeConns
// of them busy for o.duration; then sends one more request on every
// connection, which shows none was dropped. It reports the server's peak
// RSS since it started.
func (b *bench) runMemory(ctx context.Context, db *database, users []*user) error {
	o := b.o
	srv, err := b.start(ctx, db)
	if err != nil {
		return err
	}
	defer b.stop(srv)
	pid := srv.cmd.Process.Pid
	start, _ := readProcStats(pid)
	addr := strings.TrimPrefix(srv.base, "http://")
	conns := make([]*rawConn, o.conns)
	defer func() {
		for _, rc := range conns {
			if rc != nil {
				rc.conn.Close()
			}
		}
	}()
	// Users are only read here, so several connections may share one.
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				fail(fmt.Errorf("dial connection %d: %w", i, err))
				return
			}
			rc := &rawConn{conn: conn, br: bufio.NewReader(conn), u: users[i%len(users)]}
			conns[i] = rc
			if err := rc.list(); err != nil {
				fail(fmt.Errorf("connection %d: %w", i, err))
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	opened, _ := readProcStats(pid)
	rec := &recorder{}
	var recMu sync.Mutex
	end := time.Now().Add(o.duration)
	for _, rc := range conns[:o.activeConns] {
		wg.Go(func() {
			local := &recorder{}
			for time.Now().Before(end) && ctx.Err() == nil {
				t := time.Now()
				err := rc.list()
				local.record(epList, time.Since(t), err)
				if err != nil {
					break
				}
			}
			recMu.Lock()
			rec = merge([]*recorder{rec, local})
			recMu.Unlock()
		})
	}
	wg.Wait()
	for i, rc := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := rc.list(); err != nil {
				fail(fmt.Errorf("connection %d after idling: %w", i, err))
			}
		})
	}
	wg.Wait()
	final, _ := readProcStats(pid)
	n, errs := rec.totals()
	b.rep.memory = append(b.rep.memory, memoryResult{
		engine: b.engine, conns: o.conns, active: o.activeConns, requests: n, errors: errs,
		rate: float64(n) / o.duration.Seconds(), p99: summarize(rec.lat[epList]).p99,
		startRSS: start.peakRSS, openedRSS: opened.peakRSS, peakRSS: final.peakRSS, samples: fmtErrs(rec),
	})
	b.o.logf("%s memory: %d connections, peak RSS %.1f MB", b.engine, o.conns, mb(final.peakRSS))
	return firstErr
}

// runScale measures list latency against list and table size, on
// databases seeded straight in SQL and checked through the API.
func (b *bench) runScale(ctx context.Context, db *database) error {
	o := b.o
	if err := migrate(ctx, o.server, b.dir, db); err != nil {
		return err
	}
	perOther := 100
	othersA := seedGroup{prefix: "other-a-", users: max(1, o.smallTable/perOther), perUser: min(perOther, o.smallTable)}
	small := seedGroup{prefix: "small-", users: 1, perUser: 50}
	var scaled []seedGroup
	scaledTotal := 0
	for _, size := range o.scaleSizes {
		scaled = append(scaled, seedGroup{prefix: fmt.Sprintf("scale%d-", size), users: 1, perUser: size})
		scaledTotal += size
	}
	othersInTable := othersA.users * othersA.perUser
	b.o.logf("%s scale: seeding %d tasks", b.engine, othersInTable+50)
	if err := seed(ctx, db, []seedGroup{small, othersA}); err != nil {
		return err
	}
	smallRow, err := b.measureList(ctx, db, small.userID(0), othersInTable)
	if err != nil {
		return err
	}

	b.o.logf("%s scale: seeding users with %v tasks", b.engine, o.scaleSizes)
	if err := seed(ctx, db, scaled); err != nil {
		return err
	}
	othersInTable += scaledTotal
	for _, g := range scaled {
		if _, err := b.measureList(ctx, db, g.userID(0), othersInTable+50-g.perUser); err != nil {
			return err
		}
	}

	more := o.bigTable - othersInTable
	if more > 0 {
		othersB := seedGroup{prefix: "other-b-", users: max(1, more/perOther), perUser: min(perOther, more)}
		b.o.logf("%s scale: seeding %d more tasks", b.engine, othersB.users*othersB.perUser)
		start := time.Now()
		if err := seed(ctx, db, []seedGroup{othersB}); err != nil {
			return err
		}
		b.o.logf("%s scale: seeded in %v", b.engine, time.Since(start).Round(time.Millisecond))
		othersInTable += othersB.users * othersB.perUser
	}
	bigRow, err := b.measureList(ctx, db, small.userID(0), othersInTable)
	if err != nil {
		return err
	}
	if len(scaled) > 0 {
		last := scaled[len(scaled)-1]
		if _, err := b.measureList(ctx, db, last.userID(0), othersInTable+50-last.perUser); err != nil {
			return err
		}
	}
	b.rep.smallUser = append(b.rep.smallUser, [2]*scaleResult{smallRow, bigRow})
	return nil
}

// measureList starts a server on db, checks the user's list through the
// API against the database, then times sequential list requests.
func (b *bench) measureList(ctx context.Context, db *database, userID string, others int) (*scaleResult, error) {
	o := b.o
	tokens, err := mintTokens(ctx, o.server, b.dir, serverEnv(db.url), []string{userID})
	if err != nil {
		return nil, err
	}
	u, err := loadUser(ctx, db, userID, tokens[0])
	if err != nil {
		return nil, fmt.Errorf("read %s's tasks from the database: %w", userID, err)
	}
	srv, err := b.start(ctx, db)
	if err != nil {
		return nil, err
	}
	defer b.stop(srv)
	c := newClient(newTransport(1), srv.base)
	samples := o.scaleSamples
	if len(u.tasks) >= 10_000 {
		samples = max(10, samples/10)
	}
	// Warm the caches; the first answer is also checked in full against
	// what the database holds.
	for range 5 {
		if _, err := c.list(u); err != nil {
			return nil, fmt.Errorf("list of %s (%d tasks): %w", userID, len(u.tasks), err)
		}
	}
	pid := srv.cmd.Process.Pid
	resetPeakRSS(pid)
	before, _ := readProcStats(pid)
	rec := &recorder{}
	for range samples {
		start := time.Now()
		done, err := c.list(u)
		rec.record(epList, done.Sub(start), err)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	after, _ := readProcStats(pid)
	res := &scaleResult{
		engine: b.engine, userTasks: len(u.tasks), others: others, lat: summarize(rec.lat[epList]),
		errors: rec.errs[epList], bytes: c.body.Len(), cpuPerReq: (after.cpu - before.cpu) / time.Duration(samples),
		peakRSS: after.peakRSS, rssBefore: before.peakRSS, samples: fmtErrs(rec),
	}
	b.rep.scale = append(b.rep.scale, res)
	b.o.logf("%s scale: %d tasks (table %d): p50 %v p99 %v", b.engine, res.userTasks, res.others+res.userTasks, res.lat.p50, res.lat.p99)
	return res, nil
}

// runStartup times process start to the first /ready 200, on a new file
// (migrations included) and on an existing one.
func (b *bench) runStartup(ctx context.Context) error {
	o := b.o
	var fresh, again []time.Duration
	db, err := newDatabase(ctx, "sqlite", b.dir, "", "startup")
	if err != nil {
		return err
	}
	defer db.drop()
	for i := range o.startupRuns {
		fdb, err := newDatabase(ctx, "sqlite", b.dir, "", fmt.Sprintf("startup-fresh-%d", i))
		if err != nil {
			return err
		}
		srv, d, err := startServer(ctx, o.server, b.dir, serverEnv(fdb.url))
		if err != nil {
			return err
		}
		fresh = append(fresh, d)
		b.stop(srv)
		fdb.drop()
	}
	// Migrate once, then restart on the existing file.
	if err := migrate(ctx, o.server, b.dir, db); err != nil {
		return err
	}
	for range o.startupRuns {
		srv, d, err := startServer(ctx, o.server, b.dir, serverEnv(db.url))
		if err != nil {
			return err
		}
		again = append(again, d)
		b.stop(srv)
	}
	b.rep.startup = append(b.rep.startup, startupResult{engine: "sqlite", fresh: fresh, existing: again})
	b.o.logf("sqlite start-up: new file median %v, existing file median %v", median(fresh), median(again))
	return nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
