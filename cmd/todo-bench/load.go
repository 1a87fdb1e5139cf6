package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// recorder collects one goroutine's latencies and errors per endpoint.
type recorder struct {
	lat    [numEndpoints][]time.Duration
	errs   [numEndpoints]int
	sample [numEndpoints][]string // the first few error messages
}

func (r *recorder) record(ep endpoint, d time.Duration, err error) {
	if err != nil {
		r.errs[ep]++
		if len(r.sample[ep]) < 3 {
			r.sample[ep] = append(r.sample[ep], err.Error())
		}
		return
	}
	r.lat[ep] = append(r.lat[ep], d)
}

// merge combines recorders.
func merge(rs []*recorder) *recorder {
	out := &recorder{}
	for _, r := range rs {
		for ep := range numEndpoints {
			out.lat[ep] = append(out.lat[ep], r.lat[ep]...)
			out.errs[ep] += r.errs[ep]
			if len(out.sample[ep]) < 3 {
				out.sample[ep] = append(out.sample[ep], r.sample[ep][:min(len(r.sample[ep]), 3-len(out.sample[ep]))]...)
			}
		}
	}
	return out
}

// latencies are the percentiles of one endpoint's sorted samples.
type latencies struct {
	n                       int
	p50, p95, p99, max, avg time.Duration
}

func summarize(samples []time.Duration) latencies {
	if len(samples) == 0 {
		return latencies{}
	}
	slices.Sort(samples)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(samples))+0.5) - 1
		return samples[min(max(i, 0), len(samples)-1)]
	}
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	return latencies{n: len(samples), p50: at(0.50), p95: at(0.95), p99: at(0.99), max: samples[len(samples)-1], avg: sum / time.Duration(len(samples))}
}

// workload picks the next request of a goroutine.
type workload func(r *rand.Rand) endpoint

func mixed(r *rand.Rand) endpoint    { return pickMixed(r) }
func listOnly(*rand.Rand) endpoint   { return epList }
func createOnly(*rand.Rand) endpoint { return epCreate }
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x7d0)) }

// closedLoop runs one goroutine per user, each sending its next request as
// soon as the previous one is answered, first for warmup (not recorded),
// then for d. It returns the recorders and the measured wall time.
func closedLoop(ctx context.Context, base string, users []*user, next workload, warmup, d time.Duration) (*recorder, time.Duration) {
	transport := newTransport(len(users))
	defer transport.CloseIdleConnections()
	recs := make([]*recorder, len(users))
	warmEnd := time.Now().Add(warmup)
	end := warmEnd.Add(d)
	var wg sync.WaitGroup
	for i, u := range users {
		recs[i] = &recorder{}
		wg.Go(func() {
			c := newClient(transport, base)
			r := newRand(uint64(i) + 1)
			for ctx.Err() == nil {
				sent := time.Now()
				if sent.After(end) {
					return
				}
				ep := next(r)
				done, err := c.do(ep, u, r)
				if sent.After(warmEnd) {
					recs[i].record(ep, done.Sub(sent), err)
				} else if err != nil {
					recs[i].record(ep, 0, err)
				}
			}
		})
	}
	wg.Wait()
	return merge(recs), d
}

// openLoop sends rate requests a second in all, at fixed times, whatever
// the server's pace: user i sends request k at start + (k·n + i)/rate.
// Latency counts from that scheduled time, so a stall shows in every
// request that should have been sent during it (no coordinated omission).
// Each user has one request in flight at a time, as a browser tab would.
func openLoop(ctx context.Context, base string, users []*user, rate float64, warmup, d time.Duration) (*recorder, time.Duration, int) {
	transport := newTransport(len(users))
	defer transport.CloseIdleConnections()
	recs := make([]*recorder, len(users))
	n := len(users)
	interval := time.Duration(float64(time.Second) * float64(n) / rate)
	start := time.Now().Add(10 * time.Millisecond)
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(d)
	late := make([]int, n) // requests sent more than an interval after their time
	var wg sync.WaitGroup
	for i, u := range users {
		recs[i] = &recorder{}
		wg.Go(func() {
			c := newClient(transport, base)
			r := newRand(uint64(i) + 1000)
			offset := time.Duration(float64(time.Second) * float64(i) / rate)
			for k := 0; ctx.Err() == nil; k++ {
				due := start.Add(offset + time.Duration(k)*interval)
				if !due.Before(end) {
					return
				}
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				} else if -wait > interval {
					late[i]++
				}
				ep := pickMixed(r)
				done, err := c.do(ep, u, r)
				if !due.Before(measureFrom) {
					recs[i].record(ep, done.Sub(due), err)
				} else if err != nil {
					recs[i].record(ep, 0, err)
				}
			}
		})
	}
	wg.Wait()
	var lateTotal int
	for _, l := range late {
		lateTotal += l
	}
	return merge(recs), d, lateTotal
}

// totals adds up a recorder over endpoints.
func (r *recorder) totals() (n, errs int) {
	for ep := range numEndpoints {
		n += len(r.lat[ep])
		errs += r.errs[ep]
	}
	return n, errs
}

func (r *recorder) all() []time.Duration {
	var all []time.Duration
	for ep := range numEndpoints {
		all = append(all, r.lat[ep]...)
	}
	return all
}

func fmtErrs(r *recorder) []string {
	var out []string
	for ep := range numEndpoints {
		for _, s := range r.sample[ep] {
			out = append(out, fmt.Sprintf("%s: %s", ep, s))
		}
	}
	return out
}
