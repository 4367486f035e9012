package main

import (
	"flag"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// The realistic org's flags for 'sfmigrate emulator' (sfemu.OrgModel,
// docs/emulator.md "A realistic org"). The model is on when --org-model or
// any of its parameter flags is given; the others then keep the defaults
// shown in --help (sfemu.DefaultOrgModel).

const emulatorOrgModelHelp = `
A realistic org (off by default: jobs are then processed as soon as they are
closed). --org-model turns it on with the defaults below; giving any of the
other flags turns it on too:
  --queue-wait 2s        a closed job waits this long before it may start
  --org-jobs 10          jobs processed at the same time (others wait, first come first served)
  --org-rate 20000       records/s the org processes with --org-jobs jobs in progress
                         (each job in progress gets rate/jobs records/s)
  --lock-rate 0.001      share of rows per other job in progress on the same or a
                         lookup-related object that fail UNABLE_TO_LOCK_ROW (at most 0.5)
  --api-limit 100000     the daily API allocation applies with or without the model
`

type orgModelFlags struct {
	on bool
	m  sfemu.OrgModel
}

func addOrgModelFlags(fs *flag.FlagSet, f *orgModelFlags) {
	d := sfemu.DefaultOrgModel()
	fs.BoolVar(&f.on, "org-model", false, "process jobs as a realistic org does (queue wait, capacity, lock contention; see --queue-wait, --org-jobs, --org-rate, --lock-rate)")
	fs.DurationVar(&f.m.QueueWait, "queue-wait", d.QueueWait, "realistic org: time a closed job waits before it may start")
	fs.IntVar(&f.m.ConcurrentJobs, "org-jobs", d.ConcurrentJobs, "realistic org: `N` jobs processed at the same time")
	fs.Float64Var(&f.m.RecordsPerSecond, "org-rate", d.RecordsPerSecond, "realistic org: records/s processed with --org-jobs jobs in progress (0: no pacing)")
	fs.Float64Var(&f.m.LockRate, "lock-rate", d.LockRate, "realistic org: share of rows per other related job in progress failing UNABLE_TO_LOCK_ROW")
}

// setOn turns the model on when one of its flags was given.
func (f *orgModelFlags) setOn(fs *flag.FlagSet) {
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "org-model", "queue-wait", "org-jobs", "org-rate", "lock-rate":
			f.on = f.on || fl.Name != "org-model" || fl.Value.String() == "true"
		}
	})
}

// validate checks the model's values when it is on.
func (f *orgModelFlags) validate(processing string) error {
	if !f.on {
		return nil
	}
	if processing != "async" {
		return usageErrorf("emulator: the realistic org (--org-model, --queue-wait, --org-jobs, --org-rate, --lock-rate) needs --processing async, not %q", processing)
	}
	if f.m.ConcurrentJobs < 1 {
		return usageErrorf("emulator: --org-jobs %d must be at least 1", f.m.ConcurrentJobs)
	}
	if err := f.m.Validate(); err != nil {
		return usageErrorf("emulator: realistic org: %v (see --queue-wait, --org-rate, --lock-rate)", err)
	}
	return nil
}

// option is the emulator option for the model, nil when it is off.
func (f *orgModelFlags) option() sfemu.Option {
	if !f.on {
		return nil
	}
	return sfemu.WithOrgModel(f.m)
}
