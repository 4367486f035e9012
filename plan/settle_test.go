package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sfmigrate/sfmigrate/pipeline"
)

// TestSettle: which steps may start, given the states of the steps they
// wait for.
func TestSettle(t *testing.T) {
	cfg, err := pipeline.ParseTablesConfig(strings.NewReader(erp), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(cfg, nil, erpObjects(false, false))
	if err != nil {
		t.Fatal(err)
	}
	newExec := func(states map[string]string) *executor {
		e := &executor{opts: Options{Config: cfg}, logf: func(string, ...any) {},
			state: &State{Plan: p, Steps: map[string]*StepState{}}}
		for _, s := range p.Steps {
			e.state.Steps[s.ID] = &StepState{State: StatePending}
		}
		for id, st := range states {
			e.state.Steps[id].State = st
		}
		return e
	}
	ids := func(steps []*Step) []string {
		var out []string
		for _, s := range steps {
			out = append(out, s.ID)
		}
		return out
	}
	// At the start: the steps that wait for nothing (PRODUCTS looks up
	// accounts in this config).
	e := newExec(nil)
	if diff := cmp.Diff([]string{"ACCOUNTS"}, ids(e.settle(map[string]int{}, map[string]bool{}))); diff != "" {
		t.Errorf("start (-want +got):\n%s", diff)
	}
	// ACCOUNTS done, PRODUCTS running: CONTACTS may start, PRICES not yet.
	e = newExec(map[string]string{"ACCOUNTS": StateSucceeded})
	got := ids(e.settle(map[string]int{"PRODUCTS": 2}, map[string]bool{"PRODUCTS": true}))
	if diff := cmp.Diff([]string{"CONTACTS"}, got); diff != "" {
		t.Errorf("ACCOUNTS done (-want +got):\n%s", diff)
	}
	// PRODUCTS ended with failed rows: PRICES is skipped (stop), the
	// accounts' branch goes on.
	e = newExec(map[string]string{"ACCOUNTS": StateSucceeded, "CONTACTS": StateSucceeded, "PRODUCTS": StatePartial})
	got = ids(e.settle(map[string]int{}, map[string]bool{}))
	if diff := cmp.Diff([]string{"ACCOUNTS.pass2"}, got); diff != "" {
		t.Errorf("PRODUCTS partial (-want +got):\n%s", diff)
	}
	if st := e.state.Steps["PRICES"]; st.State != StateSkipped || !strings.Contains(st.Reason, "waits for PRODUCTS, which ended with") {
		t.Errorf("PRICES: %+v", st)
	}
	// ... unless PRICES says continue.
	cfg.Tables["PRICES"].OnParentFailure = "continue"
	e = newExec(map[string]string{"ACCOUNTS": StateSucceeded, "CONTACTS": StateSucceeded, "PRODUCTS": StatePartial})
	if got := ids(e.settle(map[string]int{}, map[string]bool{})); !cmp.Equal(got, []string{"ACCOUNTS.pass2", "PRICES"}) {
		t.Errorf("continue: ready %v", got)
	}
	cfg.Tables["PRICES"].OnParentFailure = ""
	// ACCOUNTS failed in this attempt: everything after it waits for a
	// rerun, transitively.
	e = newExec(map[string]string{"ACCOUNTS": StateFailed})
	got = ids(e.settle(map[string]int{}, map[string]bool{"ACCOUNTS": true}))
	if len(got) != 0 {
		t.Errorf("ACCOUNTS failed: ready %v", got)
	}
	for _, id := range []string{"CONTACTS", "ACCOUNTS.pass2", "PRODUCTS", "PRICES"} {
		if st := e.state.Steps[id]; st.State != StateWaiting {
			t.Errorf("%s: %+v, want waiting", id, st)
		}
	}
	// A step that failed in an earlier attempt is started again.
	e = newExec(map[string]string{"ACCOUNTS": StateFailed, "CONTACTS": StateWaiting})
	if got := ids(e.settle(map[string]int{}, map[string]bool{})); !cmp.Equal(got, []string{"ACCOUNTS"}) {
		t.Errorf("rerun: ready %v", got)
	}
}
