package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestPollBudgetOfALongJob: the poll backoff grows to its maximum whatever
// the first interval, so a job that takes 10 minutes costs at most 40 job
// polls (each an API call against the org's daily allocation), with the
// default first interval and with a short --poll-interval alike.
//
// Ten real minutes per case is too long for a test, so time is scaled by
// 1/1000: the emulator takes 600ms per job, the defaults 2s and 30s
// become --poll-interval 2ms and --poll-max-interval 30ms, the README's
// 50ms becomes 50µs. The number of polls depends on the ratios of these
// times only, except for the HTTP round trip of each poll (under 1ms here),
// which, counted into the waits, can only make polls fewer. (Before the
// fix, any --poll-interval capped the backoff at 2s: about 300 polls.)
func TestPollBudgetOfALongJob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"default first interval (2s, scaled)", []string{"--poll-interval", "2ms", "--poll-max-interval", "30ms"}},
		{"--poll-interval 50ms (scaled)", []string{"--poll-interval", "50us", "--poll-max-interval", "30ms"}},
		{"--poll-interval 1ms (scaled)", []string{"--poll-interval", "1us", "--poll-max-interval", "30ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, sample{products: 20}, sfemu.WithProcessing(sfemu.ProcessAsync, 600*time.Millisecond))
			start := time.Now()
			code, _, stderr := h.main("run", append([]string{"--table", "PRODUCTS"}, tc.flags...)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			jobs := h.emu.Jobs()
			if len(jobs) != 1 {
				t.Fatalf("%d jobs, want 1", len(jobs))
			}
			polls := 0
			for _, r := range h.reqs.Requests() {
				if r.Method == "GET" && strings.HasSuffix(strings.TrimSuffix(r.Path, "/"), "/jobs/ingest/"+jobs[0].ID) {
					polls++
				}
			}
			t.Logf("%d polls of a 600ms job, run took %s", polls, time.Since(start).Round(time.Millisecond))
			if polls > 40 || polls < 2 {
				t.Errorf("%d polls of a job that took 10 minutes (scaled), want between 2 and 40", polls)
			}
		})
	}
}

// TestPollFlagsChecked: poll delays that cannot be meant are usage errors
// naming the flag (not the connection), and a bare number gets the unit hint.
func TestPollFlagsChecked(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 1})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--poll-interval", "-1s"}, "--poll-interval -1s: must not be negative"},
		{[]string{"--poll-interval", "50"}, "a duration needs a unit: 50ms or 50s"},
		{[]string{"--poll-max-interval", "-5s"}, "--poll-max-interval -5s: must not be negative"},
		{[]string{"--poll-interval", "1s", "--poll-max-interval", "10ms"}, "shorter than --poll-interval"},
	} {
		code, _, stderr := h.main("run", append([]string{"--table", "PRODUCTS"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "salesforce_api") {
			t.Errorf("%v: exit %d, want 2 with %q and no blame on the connection:\n%s", tc.args, code, tc.want, stderr)
		}
		if len(h.reqs.Requests()) != 0 {
			t.Errorf("%v: requests sent", tc.args)
		}
	}
}
