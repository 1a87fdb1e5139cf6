// Command todo-bench is todo-api's load benchmark. It starts the real
// todo-api binary on a fresh database of either engine, creates users and
// tasks through the API, drives it over real HTTP with keep-alive
// connections, checks every response, and prints a Markdown report: per
// endpoint throughput and latency, the server's CPU and peak memory, and the
// database's own ceiling for the same query measured in the same run, and
// a bare-bones server's figures for the same loads on the same database.
//
//	go run ./cmd/todo-bench                      # the full set, both engines
//	go run ./cmd/todo-bench -smoke               # a few seconds; exit 1 on any error
//	go run ./cmd/todo-bench -engine sqlite -scenarios mixed,create -d 20s
//
// It shares the machine with the server it measures: on a small machine
// the generator's own CPU is part of the picture, and is reported too.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == bareServerCommand {
		// The benchmark's baseline, started by the benchmark itself (bare.go).
		if err := runBareServer(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "todo-bench bare-server:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "todo-bench:", err)
		os.Exit(1)
	}
}

// allScenarios are the scenarios in the order they run. "bare" runs the
// list-only and mixed loads again against a bare-bones server (bare.go) on
// the same database: the baseline todo-api is compared with.
var allScenarios = []string{"list", "mixed", "bare", "open", "create", "scale", "memory", "startup"}

// options are the command line's settings.
type options struct {
	server       string // todo-api binary; "" builds one
	engines      []string
	databaseURL  string // PostgreSQL server to create a fresh database in
	concurrency  int
	duration     time.Duration
	warmup       time.Duration
	rate         float64 // open loop requests per second
	tasksPerUser int
	scenarios    []string
	smoke        bool
	cpuProfile   string // the generator's own CPU profile
	scaleSizes   []int  // tasks of the users whose list latency is measured
	smallTable   int    // tasks in the table for the small user's first measurement
	bigTable     int    // and for its second
	conns        int    // keep-alive connections in the memory test
	activeConns  int    // of which busy
	startupRuns  int
	scaleSamples int
	pgbench      string
	keep         bool
	serverEnv    []string // extra KEY=VALUE settings for todo-api
	progress     io.Writer
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("todo-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{progress: stderr}
	var engines, scenarios, sizes, extraEnv string
	defaultURL := getenv("BENCH_DATABASE_URL")
	if defaultURL == "" {
		defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	fs.StringVar(&o.server, "server", "", "todo-api binary to run (default: go build ./cmd/todo-api into a temporary directory)")
	fs.StringVar(&engines, "engine", "sqlite,postgres", "engines to measure: sqlite, postgres or both, comma separated")
	fs.StringVar(&o.databaseURL, "database-url", defaultURL, "PostgreSQL server in which a fresh database is created and dropped (env BENCH_DATABASE_URL)")
	fs.IntVar(&o.concurrency, "c", 100, "concurrent users (closed loop) and users in the open loop")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "duration of each load phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each phase")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: requests per second, scheduled at fixed times (default: 60% of the closed loop's mixed rate in the same run, or 1000)")
	fs.IntVar(&o.tasksPerUser, "tasks", 50, "tasks each user starts with")
	fs.StringVar(&scenarios, "scenarios", strings.Join(allScenarios, ","), "scenarios to run: "+strings.Join(allScenarios, ", "))
	fs.BoolVar(&o.smoke, "smoke", false, "tiny sizes, a few seconds in all; exit non-zero on any error")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to this file")
	fs.StringVar(&sizes, "scale-sizes", "10,100,1000,10000", "scale run: task counts of the users whose list latency is measured")
	fs.IntVar(&o.smallTable, "small-table", 10_000, "scale run: tasks of other users in the table for the small user's first measurement")
	fs.IntVar(&o.bigTable, "big-table", 1_000_000, "scale run: and for its second")
	fs.IntVar(&o.conns, "conns", 2000, "memory test: concurrent keep-alive connections")
	fs.IntVar(&o.activeConns, "active", 100, "memory test: how many of them keep sending requests")
	fs.IntVar(&o.startupRuns, "startup-runs", 7, "start-up test: runs (the median is reported)")
	fs.IntVar(&o.scaleSamples, "samples", 200, "scale run: requests per measured user (fewer for large lists)")
	fs.StringVar(&o.pgbench, "pgbench", "", "pgbench binary (default: from PATH or /usr/lib/postgresql/*/bin)")
	fs.StringVar(&extraEnv, "server-env", "", "extra settings for todo-api, comma separated KEY=VALUE (e.g. GOMEMLIMIT=64MiB,LOG_LEVEL=warn)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (databases, server logs)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.smoke {
		// Tiny everything, unless given explicitly.
		smoke := map[string]func(){
			"c":            func() { o.concurrency = 8 },
			"d":            func() { o.duration = time.Second },
			"warmup":       func() { o.warmup = 200 * time.Millisecond },
			"tasks":        func() { o.tasksPerUser = 5 },
			"scale-sizes":  func() { sizes = "10,100" },
			"small-table":  func() { o.smallTable = 200 },
			"big-table":    func() { o.bigTable = 2000 },
			"conns":        func() { o.conns = 50 },
			"active":       func() { o.activeConns = 5 },
			"startup-runs": func() { o.startupRuns = 2 },
			"samples":      func() { o.scaleSamples = 20 },
		}
		for name, apply := range smoke {
			if !set[name] {
				apply()
			}
		}
	}
	for _, kv := range splitList(extraEnv) {
		if !strings.Contains(kv, "=") {
			return nil, fmt.Errorf("-server-env: %q is not KEY=VALUE", kv)
		}
		o.serverEnv = append(o.serverEnv, kv)
	}
	for _, e := range splitList(engines) {
		if e != "sqlite" && e != "postgres" {
			return nil, fmt.Errorf("-engine: unknown engine %q: want sqlite or postgres", e)
		}
		o.engines = append(o.engines, e)
	}
	for _, s := range splitList(scenarios) {
		if !slices.Contains(allScenarios, s) {
			return nil, fmt.Errorf("-scenarios: unknown scenario %q: want some of %s", s, strings.Join(allScenarios, ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	for _, s := range splitList(sizes) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-scale-sizes: %q is not a positive number", s)
		}
		o.scaleSizes = append(o.scaleSizes, n)
	}
	switch {
	case len(o.engines) == 0:
		return nil, errors.New("-engine: no engine given")
	case o.concurrency < 1:
		return nil, errors.New("-c must be at least 1")
	case o.duration <= 0:
		return nil, errors.New("-d must be positive")
	case o.rate < 0:
		return nil, errors.New("-rate must not be negative")
	case o.activeConns > o.conns:
		return nil, errors.New("-active must not exceed -conns")
	}
	return o, nil
}

func (o *options) runs(scenario string) bool { return slices.Contains(o.scenarios, scenario) }

func (o *options) logf(format string, args ...any) {
	fmt.Fprintf(o.progress, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		// The generator shares the cores with the server: what it costs is
		// what the server does not get.
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	tmp, err := os.MkdirTemp("", "todo-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		o.logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if o.server != "" {
		if _, err := os.Stat(o.server); err != nil {
			return fmt.Errorf("-server: %w", err)
		}
	} else {
		o.server = tmp + "/todo-api"
		o.logf("building todo-api into %s", o.server)
		if err := buildServer(ctx, o.server); err != nil {
			return err
		}
	}

	rep := newReport(o)
	for _, engine := range o.engines {
		b := &bench{o: o, engine: engine, dir: tmp + "/" + engine, rep: rep}
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return err
		}
		err := b.run(ctx)
		if err != nil {
			rep.failf("%s: %v", engine, err)
			o.logf("%s: %v", engine, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	rep.write(stdout)
	if n := rep.errorCount(); n > 0 {
		return fmt.Errorf("%d errors (see the report)", n)
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
