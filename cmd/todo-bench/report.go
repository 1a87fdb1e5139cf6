package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// phase is one measured load phase.
type phase struct {
	engine, scenario string
	rec              *recorder
	elapsed          time.Duration
	serverCPU        time.Duration
	genCPU           time.Duration
	peakRSS          int64
	ceiling          *ceiling // the database alone, for list-only
	note             string
	bare             bool // measured on the bare-bones server, not todo-api
}

func (p *phase) rate() float64 {
	n, _ := p.rec.totals()
	return float64(n) / p.elapsed.Seconds()
}

// scaleResult is the latency of one user's list, alone, sequentially.
type scaleResult struct {
	engine             string
	userTasks, others  int
	lat                latencies
	errors, bytes      int
	cpuPerReq          time.Duration
	peakRSS, rssBefore int64
	samples            []string
}

type memoryResult struct {
	engine                       string
	conns, active                int
	requests, errors             int
	rate                         float64
	p99                          time.Duration
	startRSS, openedRSS, peakRSS int64
	samples                      []string
}

type startupResult struct {
	engine          string
	fresh, existing []time.Duration
}

// report gathers every result and prints them as Markdown.
type report struct {
	o         *options
	started   time.Time
	loadavg   string
	mu        sync.Mutex
	phases    []*phase
	scale     []*scaleResult
	smallUser [][2]*scaleResult
	memory    []memoryResult
	startup   []startupResult
	failures  []string
}

func newReport(o *options) *report {
	load, _ := os.ReadFile("/proc/loadavg")
	return &report{o: o, started: time.Now(), loadavg: strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " ")}
}

func (r *report) add(p *phase) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases = append(r.phases, p)
}

func (r *report) failf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// errorCount is every failed request and every failure noted.
func (r *report) errorCount() int {
	n := len(r.failures)
	for _, p := range r.phases {
		_, errs := p.rec.totals()
		n += errs
	}
	for _, s := range r.scale {
		n += s.errors
	}
	for _, m := range r.memory {
		n += m.errors
	}
	return n
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000)
}

// machine describes where the run happened.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	var memTotal string
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				memTotal = fmt.Sprintf(", %.1f GB RAM", float64(kb)/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%d × %s%s, Linux %s, %s", runtime.NumCPU(), model, memTotal, strings.TrimSpace(string(kernel)), runtime.Version())
}

func (r *report) write(w io.Writer) {
	o := r.o
	fmt.Fprintf(w, "## todo-api benchmark, %s\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- Machine: %s; load average at start %s. The load generator and the database run on the same cores.\n", machine(), r.loadavg)
	mode := ""
	if o.smoke {
		mode = " (smoke: tiny sizes, figures not meaningful)"
	}
	fmt.Fprintf(w, "- Settings%s: `-c %d -d %s -warmup %s -tasks %d`; todo-api with its defaults (logging, metrics, limits, MAX_IN_FLIGHT=1024) except RATE_LIMIT_USER=0.\n",
		mode, o.concurrency, o.duration, o.warmup, o.tasksPerUser)
	if len(o.serverEnv) > 0 {
		fmt.Fprintf(w, "- Extra server settings: `%s`.\n", strings.Join(o.serverEnv, " "))
	}
	if o.runs("bare") {
		fmt.Fprintf(w, "- \"bare-bones\" rows: the same loads against a plain server on the same database, run while todo-api idles (`todo-bench %s`: standard mux, jwt/v5 per request, pgxpool defaults or database/sql SQLite, encoding/json, no middleware).\n", bareServerCommand)
	}
	fmt.Fprintf(w, "- Every response is checked (status, shape, owner, exactly the tasks the user has); a failed check counts as an error, not as a request.\n\n")

	if len(r.phases) > 0 {
		fmt.Fprintf(w, "### Load (%d users; latency in ms; open loop measured from each request's scheduled time)\n\n", o.concurrency)
		fmt.Fprintln(w, "| engine | scenario | endpoint | requests | req/s | p50 | p95 | p99 | max | errors | server CPU s (per req) | generator CPU s (per req) | server peak RSS MB |")
		fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, p := range r.phases {
			n, errs := p.rec.totals()
			all := summarize(p.rec.all())
			perReq, genPerReq := time.Duration(0), time.Duration(0)
			if n > 0 {
				perReq, genPerReq = p.serverCPU/time.Duration(n), p.genCPU/time.Duration(n)
			}
			fmt.Fprintf(w, "| %s | %s | **all** | %d | **%.0f** | %s | %s | **%s** | %s | %d | %.1f (%d µs) | %.1f (%d µs) | %.1f |\n",
				p.engine, p.scenario, n, p.rate(), ms(all.p50), ms(all.p95), ms(all.p99), ms(all.max), errs,
				p.serverCPU.Seconds(), perReq.Microseconds(), p.genCPU.Seconds(), genPerReq.Microseconds(), mb(p.peakRSS))
			used := 0
			for ep := range numEndpoints {
				if len(p.rec.lat[ep]) > 0 || p.rec.errs[ep] > 0 {
					used++
				}
			}
			if used > 1 {
				for ep := range numEndpoints {
					if len(p.rec.lat[ep]) == 0 && p.rec.errs[ep] == 0 {
						continue
					}
					l := summarize(p.rec.lat[ep])
					fmt.Fprintf(w, "| | | %s | %d | %.0f | %s | %s | %s | %s | %d | | | |\n",
						ep, l.n, float64(l.n)/p.elapsed.Seconds(), ms(l.p50), ms(l.p95), ms(l.p99), ms(l.max), p.rec.errs[ep])
				}
			}
		}
		fmt.Fprintln(w)
		var notes []string
		for _, p := range r.phases {
			if p.note != "" {
				notes = append(notes, fmt.Sprintf("%s, %s: %s.", p.engine, p.scenario, p.note))
			}
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, "%s\n\n", strings.Join(notes, " "))
		}

		r.writeBare(w)

		fmt.Fprintln(w, "### The database's own ceiling for the list query (same run, same users)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| engine | API list-only req/s | database alone, queries/s | how | ratio |")
		fmt.Fprintln(w, "|---|---:|---:|---|---:|")
		for _, p := range r.phases {
			if p.ceiling != nil {
				fmt.Fprintf(w, "| %s (%s) | %.0f | %.0f | %s | **%.2f** |\n", p.engine, p.scenario, p.rate(), p.ceiling.qps, p.ceiling.what, p.rate()/p.ceiling.qps)
			}
		}
		fmt.Fprintln(w)
	}

	if len(r.scale) > 0 {
		fmt.Fprintln(w, "### Scale: one user's list, sequential requests (ms)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| engine | user's tasks | other users' tasks in the table | p50 | p99 | max | response KB | server CPU per request ms | server RSS growth MB | errors |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, s := range r.scale {
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %.0f | %s | %.1f | %d |\n", s.engine, s.userTasks, s.others,
				ms(s.lat.p50), ms(s.lat.p99), ms(s.lat.max), float64(s.bytes)/1024, ms(s.cpuPerReq), mb(s.peakRSS-s.rssBefore), s.errors)
		}
		fmt.Fprintln(w)
		for _, pair := range r.smallUser {
			a, b := pair[0], pair[1]
			if a != nil && b != nil && a.lat.p50 > 0 {
				fmt.Fprintf(w, "- %s: the %d-task user's p50 with %d other tasks is **%.2f×** its p50 with %d (p99 %.2f×).\n",
					a.engine, a.userTasks, b.others, float64(b.lat.p50)/float64(a.lat.p50), a.others, float64(b.lat.p99)/float64(a.lat.p99))
			}
		}
		fmt.Fprintln(w)
	}

	if len(r.memory) > 0 {
		fmt.Fprintln(w, "### Memory: concurrent keep-alive connections (fresh server process)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| engine | connections | busy | list req/s on the busy ones | p99 ms | errors | RSS at start MB | peak after opening MB | peak overall MB |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, m := range r.memory {
			fmt.Fprintf(w, "| %s | %d | %d | %.0f | %s | %d | %.1f | %.1f | **%.1f** |\n", m.engine, m.conns, m.active, m.rate, ms(m.p99), m.errors,
				mb(m.startRSS), mb(m.openedRSS), mb(m.peakRSS))
		}
		fmt.Fprintln(w)
	}

	for _, s := range r.startup {
		fmt.Fprintf(w, "### Start-up to ready (%s, process start → first `/ready` 200, %d runs)\n\n", s.engine, len(s.fresh))
		fmt.Fprintf(w, "- new file (migrations applied): median **%s ms** (runs: %s)\n", ms(median(s.fresh)), msList(s.fresh))
		fmt.Fprintf(w, "- existing file: median **%s ms** (runs: %s)\n\n", ms(median(s.existing)), msList(s.existing))
	}

	if !o.smoke {
		r.writeTargets(w)
	}

	var samples []string
	for _, p := range r.phases {
		for _, s := range fmtErrs(p.rec) {
			samples = append(samples, fmt.Sprintf("%s, %s: %s", p.engine, p.scenario, s))
		}
	}
	for _, s := range r.scale {
		for _, e := range s.samples {
			samples = append(samples, fmt.Sprintf("%s, scale %d: %s", s.engine, s.userTasks, e))
		}
	}
	for _, m := range r.memory {
		for _, e := range m.samples {
			samples = append(samples, fmt.Sprintf("%s, memory: %s", m.engine, e))
		}
	}
	if len(r.failures)+len(samples) > 0 {
		fmt.Fprintln(w, "### Errors")
		fmt.Fprintln(w)
		for _, f := range append(r.failures, samples...) {
			fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(f, "\n", " "))
		}
		fmt.Fprintln(w)
	}
}

// writeBare compares todo-api with the bare-bones server: the same load on
// the same database in the same run, so a slow machine slows both.
func (r *report) writeBare(w io.Writer) {
	find := func(engine, scenario string) *phase {
		for _, p := range r.phases {
			if p.engine == engine && p.scenario == scenario {
				return p
			}
		}
		return nil
	}
	var rows []string
	for _, engine := range r.o.engines {
		for _, load := range []string{"list-only", "mixed, closed loop"} {
			api, bare := find(engine, load), find(engine, "bare-bones: "+load)
			if api == nil || bare == nil || bare.rate() == 0 {
				continue
			}
			apiP99, bareP99 := summarize(api.rec.all()).p99, summarize(bare.rec.all()).p99
			p99Ratio := "–"
			if bareP99 > 0 {
				p99Ratio = fmt.Sprintf("%.2f", float64(apiP99)/float64(bareP99))
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %.0f | %.0f | **%.2f** | %s | %s | **%s** |",
				engine, load, api.rate(), bare.rate(), api.rate()/bare.rate(), ms(apiP99), ms(bareP99), p99Ratio))
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "### todo-api vs the bare-bones server (same run)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| engine | load | todo-api req/s | bare-bones req/s | req/s ratio | todo-api p99 ms | bare-bones p99 ms | p99 ratio |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	for _, row := range rows {
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios are todo-api's figure over the bare-bones server's: above 1 is more req/s, or a longer p99, than the baseline.")
	fmt.Fprintln(w)
}

func msList(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, ms(d))
	}
	return strings.Join(parts, ", ")
}

// writeTargets compares the run with the targets.
func (r *report) writeTargets(w io.Writer) {
	type row struct{ target, measured string }
	var rows []row
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	find := func(engine, scenario string) *phase {
		for _, p := range r.phases {
			if p.engine == engine && p.scenario == scenario {
				return p
			}
		}
		return nil
	}
	for _, t := range []struct {
		engine string
		rate   float64
	}{{"postgres", 5000}, {"sqlite", 4500}} {
		if p := find(t.engine, "mixed, closed loop"); p != nil {
			p99 := summarize(p.rec.all()).p99
			_, errs := p.rec.totals()
			// What the day allows, beside the figure: the database's
			// ceiling and the bare-bones server, from this run.
			var context []string
			if l := find(t.engine, "list-only"); l != nil && l.ceiling != nil {
				context = append(context, fmt.Sprintf("list query ceiling %.0f q/s", l.ceiling.qps))
			}
			if b := find(t.engine, "bare-bones: mixed, closed loop"); b != nil && b.rate() > 0 {
				context = append(context, fmt.Sprintf("bare-bones server %.0f req/s, %.2f×", b.rate(), p.rate()/b.rate()))
			}
			same := ""
			if len(context) > 0 {
				same = " (same run: " + strings.Join(context, "; ") + ")"
			}
			rows = append(rows, row{
				fmt.Sprintf("%s mixed @%d: ≥ %.0f req/s, p99 ≤ 35 ms", t.engine, r.o.concurrency, t.rate),
				fmt.Sprintf("%.0f req/s, p99 %s ms, %d errors%s: %s", p.rate(), ms(p99), errs, same, check(p.rate() >= t.rate && p99 <= 35*time.Millisecond && errs == 0)),
			})
		}
	}
	for _, p := range r.phases {
		if p.ceiling != nil && p.engine == "postgres" && !p.bare {
			ratio := p.rate() / p.ceiling.qps
			rows = append(rows, row{fmt.Sprintf("%s %s: ≥ 0.30 of pgbench", p.engine, p.scenario), fmt.Sprintf("%.2f: %s", ratio, check(ratio >= 0.30))})
		}
	}
	if p := find("sqlite", "create-only"); p != nil {
		_, errs := p.rec.totals()
		rows = append(rows, row{fmt.Sprintf("sqlite creates @%d writers: ≥ 2,000/s, durable", r.o.concurrency),
			fmt.Sprintf("%.0f/s, %d errors: %s", p.rate(), errs, check(p.rate() >= 2000 && errs == 0))})
	}
	for _, pair := range r.smallUser {
		if a, b := pair[0], pair[1]; a != nil && b != nil && a.lat.p50 > 0 {
			ratio := float64(b.lat.p50) / float64(a.lat.p50)
			rows = append(rows, row{fmt.Sprintf("%s small user at %d vs %d tasks: ≤ 1.2×", a.engine, b.others, a.others),
				fmt.Sprintf("%.2f× (p50 %s → %s ms): %s", ratio, ms(a.lat.p50), ms(b.lat.p50), check(ratio <= 1.2))})
		}
	}
	for _, s := range r.scale {
		if s.userTasks >= 10_000 {
			rows = append(rows, row{fmt.Sprintf("%s %d-task list (table %d): < 100 ms", s.engine, s.userTasks, s.userTasks+s.others),
				fmt.Sprintf("p50 %s ms, p99 %s ms: %s", ms(s.lat.p50), ms(s.lat.p99), check(s.lat.p99 < 100*time.Millisecond))})
		}
	}
	for _, m := range r.memory {
		rows = append(rows, row{fmt.Sprintf("%s peak RSS with %d connections: ≤ 100 MB", m.engine, m.conns),
			fmt.Sprintf("%.1f MB: %s", mb(m.peakRSS), check(m.peakRSS <= 100<<20 && m.errors == 0))})
	}
	for _, s := range r.startup {
		rows = append(rows, row{"sqlite start-up to ready: ≤ 150 ms",
			fmt.Sprintf("median %s ms (new file), %s ms (existing): %s", ms(median(s.fresh)), ms(median(s.existing)), check(median(s.existing) <= 150*time.Millisecond && median(s.fresh) <= 150*time.Millisecond))})
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "### Targets (issue 5)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured |")
	fmt.Fprintln(w, "|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s |\n", r.target, r.measured)
	}
	fmt.Fprintln(w)
}
