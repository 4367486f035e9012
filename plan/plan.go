package plan

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/salesforce"
)

// Lookup is what the plan needs to know about one lookup (reference) field
// of a target object, from its describe.
type Lookup struct {
	Field        string   // the reference field, e.g. ParentId or Product__c
	Relationship string   // its relationship name, e.g. Parent or Product__r
	ReferenceTo  []string // the objects it may point to (several: polymorphic)
	Required     bool     // a record cannot be created without it
	guessed      bool     // offline: matched by a similar name only
}

// Object is the describe information of one target object the plan uses.
type Object struct {
	Name    string
	Lookups []Lookup
}

// lookup returns the lookup whose relationship name is rel (any case).
func (o *Object) lookup(rel string) *Lookup {
	for i := range o.Lookups {
		if strings.EqualFold(o.Lookups[i].Relationship, rel) {
			return &o.Lookups[i]
		}
	}
	return nil
}

// Pass numbers. Pass 2 exists only for tables with deferred fields.
const (
	Pass1 = 1
	Pass2 = 2
)

// Edge is one reason for a table to wait for another.
type Edge struct {
	Child  string `json:"child"`
	Parent string `json:"parent"`
	// Column and Field are the mapping that makes the child wait ("" for
	// depends_on); Lookup is the reference field and Objects what it points to.
	Column   string   `json:"column,omitempty"`
	Field    string   `json:"field,omitempty"`
	Lookup   string   `json:"lookup,omitempty"`
	Objects  []string `json:"objects,omitempty"`
	Required bool     `json:"required,omitempty"`
	// DependsOn marks an order given by depends_on in the tables config.
	DependsOn bool `json:"depends_on,omitempty"`
	// Deferred marks a lookup that closes a cycle (or points at the table
	// itself): pass 1 leaves it out, pass 2 sets it.
	Deferred bool   `json:"deferred,omitempty"`
	Reason   string `json:"reason"`
}

// Step is one sub-run of the plan: a table's pass.
type Step struct {
	// ID names the step and its sub-run: TABLE for pass 1, TABLE.pass2.
	ID    string `json:"id"`
	Table string `json:"table"`
	Pass  int    `json:"pass"`
	// Object is the target object; Columns the source columns the pass loads.
	Object  string   `json:"sf_object"`
	Columns []string `json:"columns"`
	// Waits lists the steps that must have finished first, with why.
	Waits   []string `json:"waits_for"`
	Reasons []string `json:"reasons"`
	// OnParentFailure is the table's on_parent_failure (stop or continue).
	OnParentFailure string `json:"on_parent_failure"`
	Wave            int    `json:"wave"` // 1 for the first wave
}

// Plan is the order in which a tables config's tables are loaded.
type Plan struct {
	// Tables are the tables of the plan, in load order.
	Tables []string `json:"tables"`
	// Steps in order: by wave, then by id.
	Steps []Step `json:"steps"`
	// Waves lists step ids per wave; the steps of one wave may run at the
	// same time.
	Waves [][]string `json:"waves"`
	// Edges are every reason a table waits for another.
	Edges []Edge `json:"edges"`
	// Deferred maps a table to the source columns its pass 2 sets.
	Deferred map[string][]string `json:"deferred,omitempty"`
	// Described says whether the plan was built from the org's describes
	// (false: from the tables config alone, see Notes).
	Described bool `json:"described"`
	// Notes are things the plan could not decide (offline lookups).
	Notes []string `json:"notes,omitempty"`
}

// StepID names a table's pass.
func StepID(table string, pass int) string {
	if pass == Pass1 {
		return table
	}
	return fmt.Sprintf("%s.pass%d", table, pass)
}

// Step returns the step with this id (nil if none).
func (p *Plan) Step(id string) *Step {
	for i := range p.Steps {
		if p.Steps[i].ID == id {
			return &p.Steps[i]
		}
	}
	return nil
}

// CycleError refuses a plan whose cycle cannot be broken in two passes:
// every lookup that closes it is a required field (or an order the tables
// config gives with depends_on). Nothing has been sent when it is returned.
type CycleError struct {
	Tables []string
	Edges  []Edge // the edges of the cycle that cannot be deferred
}

func (e *CycleError) Error() string {
	var parts []string
	for _, ed := range e.Edges {
		switch {
		case ed.DependsOn:
			parts = append(parts, fmt.Sprintf("%s depends_on %s", ed.Child, ed.Parent))
		default:
			parts = append(parts, fmt.Sprintf("%s.%s (%s, required)", ed.Child, ed.Field, ed.Lookup))
		}
	}
	return fmt.Sprintf("plan: tables %s wait for each other and the cycle cannot be broken: %s; a cycle is loaded in two passes only when one of its lookups may be empty at first. "+
		"Make one of these fields optional in Salesforce, or remove one of the mappings (or depends_on) and set it in a separate table entry run afterwards with operation update",
		strings.Join(e.Tables, ", "), strings.Join(parts, "; "))
}

// ConfigError marks the refusal as a configuration problem (exit 2).
func (e *CycleError) ConfigError() bool { return true }

// Build makes the plan for the named tables of cfg (all of them when names
// is empty). objects holds the describe of each target object; with nil
// the plan is built from the tables config alone: a lookup then makes a
// table wait only for the plan's tables whose sf_object is named like its
// relationship (Account.External_Id__c waits for the table loading
// Account; Parent.X on Account for itself), and required fields are not
// known (the notes say which lookups could not be placed).
func Build(cfg *pipeline.TablesConfig, names []string, objects map[string]*Object) (*Plan, error) {
	if len(names) == 0 {
		names = cfg.TableNames()
	}
	sel := map[string]bool{}
	for _, n := range names {
		if _, ok := cfg.Tables[n]; !ok {
			return nil, &pipeline.ConfigError{Setting: "--tables", Value: n, Source: "flag --tables",
				Problem: "is not a table of the tables config " + cfg.Path,
				Fix:     withGuess(pipeline.Suggest(n, cfg.TableNames()), "use names of "+strings.Join(cfg.TableNames(), ", "))}
		}
		if sel[n] {
			return nil, &pipeline.ConfigError{Setting: "--tables", Value: n, Source: "flag --tables", Problem: "is named twice", Fix: "name each table once"}
		}
		sel[n] = true
	}
	names = slices.Sorted(func(yield func(string) bool) {
		for n := range sel {
			if !yield(n) {
				return
			}
		}
	})
	p := &Plan{Described: objects != nil, Deferred: map[string][]string{}}
	// Which tables load which object.
	loads := map[string][]string{}
	objName := map[string]string{} // lower-cased -> as the tables config spells it
	for _, n := range names {
		o := strings.ToLower(cfg.Tables[n].SFObject)
		loads[o] = append(loads[o], n)
		objName[o] = cfg.Tables[n].SFObject
	}
	for _, child := range names {
		tc := cfg.Tables[child]
		for _, dep := range tc.DependsOn {
			if !sel[dep] {
				p.Notes = append(p.Notes, fmt.Sprintf("%s depends_on %s, which is not in this plan: it is assumed loaded already", child, dep))
				continue
			}
			p.Edges = append(p.Edges, Edge{Child: child, Parent: dep, DependsOn: true,
				Reason: fmt.Sprintf("%s waits for %s: depends_on in the tables config", child, dep)})
		}
		for _, f := range tc.Fields {
			rel, ext, ok := strings.Cut(f.Name, ".")
			if !ok {
				continue
			}
			var lk Lookup
			if objects != nil {
				o := objects[strings.ToLower(tc.SFObject)]
				var l *Lookup
				if o != nil {
					l = o.lookup(rel)
				}
				if l == nil {
					p.Notes = append(p.Notes, fmt.Sprintf("%s: %s: %s has no lookup with relationship name %s (the run's authenticate step refuses it)", child, f.Column, tc.SFObject, rel))
					continue
				}
				lk = *l
			} else {
				lk = offlineLookup(rel, tc.SFObject, loads, objName)
				if len(lk.ReferenceTo) == 0 {
					p.Notes = append(p.Notes, fmt.Sprintf("%s: %s -> %s: without the org's describe the object this lookup points to is unknown; no order is derived from it (give depends_on, or plan with a Salesforce connection)", child, f.Column, f.Name))
					continue
				}
				if lk.guessed {
					p.Notes = append(p.Notes, fmt.Sprintf("%s: %s -> %s: without the org's describe, the lookup is taken to point to %s by its name (the run plans from the describe)", child, f.Column, f.Name, strings.Join(lk.ReferenceTo, ", ")))
				}
			}
			for _, obj := range lk.ReferenceTo {
				for _, parent := range loads[strings.ToLower(obj)] {
					e := Edge{Child: child, Parent: parent, Column: f.Column, Field: f.Name, Lookup: tc.SFObject + "." + lk.Field,
						Objects: lk.ReferenceTo, Required: lk.Required}
					what := "looks up " + obj
					if len(lk.ReferenceTo) > 1 {
						what = "looks up " + strings.Join(lk.ReferenceTo, " or ") + " (polymorphic)"
					}
					if parent == child {
						e.Reason = fmt.Sprintf("%s points at its own rows: field %s %s", child, f.Name, what)
					} else {
						e.Reason = fmt.Sprintf("%s waits for %s: field %s %s, loaded by %s", child, parent, f.Name, what, parent)
					}
					p.Edges = append(p.Edges, e)
				}
			}
			_ = ext
		}
	}
	if err := p.breakCycles(cfg, names); err != nil {
		return nil, err
	}
	p.schedule(cfg, names)
	return p, nil
}

// offlineLookup guesses what a relationship points to from its name alone:
// a standard relationship name (Account, Parent) or a custom one (X__r ->
// X__c), matched against the objects of the plan.
func offlineLookup(rel, self string, loads map[string][]string, objName map[string]string) Lookup {
	l := Lookup{Relationship: rel}
	cands := []string{rel}
	if base, ok := strings.CutSuffix(rel, "__r"); ok {
		cands = []string{base + "__c", base}
		l.Field = base + "__c"
	} else {
		l.Field = rel + "Id"
	}
	if strings.EqualFold(rel, "Parent") {
		cands = append(cands, self)
	}
	for _, c := range cands {
		if len(loads[strings.ToLower(c)]) > 0 {
			l.ReferenceTo = append(l.ReferenceTo, c)
		}
	}
	if len(l.ReferenceTo) > 0 {
		return l
	}
	// A custom relationship named after the object it points to, perhaps
	// with a role in front: Product__r -> Product2, Primary_Contact__r ->
	// Contact. A guess: the notes say so.
	base := strings.ToLower(strings.TrimSuffix(rel, "__r"))
	objs := slices.Sorted(func(yield func(string) bool) {
		for o := range loads {
			if !yield(o) {
				return
			}
		}
	})
	for _, o := range objs {
		norm := strings.TrimRight(strings.TrimSuffix(o, "__c"), "0123456789")
		if norm != "" && (base == norm || strings.HasSuffix(base, "_"+norm)) {
			l.ReferenceTo = append(l.ReferenceTo, objName[o])
			l.guessed = true
		}
	}
	return l
}

// breakCycles defers the lookups that close a cycle: every lookup of a
// table to itself, and every optional lookup between tables of one
// strongly connected component. What is left must be acyclic, else the
// plan is refused naming the fields.
func (p *Plan) breakCycles(cfg *pipeline.TablesConfig, names []string) error {
	// Self references.
	for i := range p.Edges {
		e := &p.Edges[i]
		if e.Child != e.Parent {
			continue
		}
		if e.Required {
			return &CycleError{Tables: []string{e.Child}, Edges: []Edge{*e}}
		}
		e.Deferred = true
	}
	// Between tables: defer an optional lookup when the lookups not
	// deferred so far lead from its parent back to its table (it closes a
	// cycle). Deferring only removes paths, so a lookup kept never closes a
	// cycle later. Tables that need a second pass anyway (self-references)
	// give up their lookups first, then by name: the fewest passes, the
	// same plan every time.
	comp := p.components(names, func(e *Edge) bool { return e.Child != e.Parent })
	var cands []int
	for i, e := range p.Edges {
		if e.Child != e.Parent && comp[e.Child] == comp[e.Parent] && !e.Required && !e.DependsOn {
			cands = append(cands, i)
		}
	}
	hasPass2 := func(t string) bool {
		for _, e := range p.Edges {
			if e.Child == t && e.Deferred {
				return true
			}
		}
		return false
	}
	sort.SliceStable(cands, func(a, b int) bool {
		ea, eb := p.Edges[cands[a]], p.Edges[cands[b]]
		if pa, pb := hasPass2(ea.Child), hasPass2(eb.Child); pa != pb {
			return pa
		}
		if ea.Child != eb.Child {
			return ea.Child < eb.Child
		}
		return ea.Column < eb.Column
	})
	for _, i := range cands {
		if p.reaches(p.Edges[i].Parent, p.Edges[i].Child) {
			p.Edges[i].Deferred = true
		}
	}
	// What remains inside a component must not cycle.
	rest := p.components(names, func(e *Edge) bool { return e.Child != e.Parent && !e.Deferred })
	groups := map[int][]string{}
	for _, n := range names {
		groups[rest[n]] = append(groups[rest[n]], n)
	}
	for _, n := range names {
		g := groups[rest[n]]
		if len(g) < 2 || g[0] != n {
			continue
		}
		ce := &CycleError{Tables: g}
		for _, e := range p.Edges {
			if !e.Deferred && e.Child != e.Parent && rest[e.Child] == rest[n] && rest[e.Parent] == rest[n] {
				ce.Edges = append(ce.Edges, e)
			}
		}
		return ce
	}
	// A deferred lookup is set in pass 2 by upsert on the table's external
	// id: the table must have one, mapped.
	for _, e := range p.Edges {
		if !e.Deferred {
			continue
		}
		tc := cfg.Tables[e.Child]
		if col := externalIDColumn(tc); col == "" {
			return &pipeline.ConfigError{Setting: "tables." + e.Child + ".external_id_field", Value: tc.ExternalIDField, Source: "tables config " + cfg.Path,
				Problem: fmt.Sprintf("%s closes a cycle, so it is set in a second pass that finds each row again by its external id; the table has no external id field mapped in its fields", e.Field),
				Fix:     "set external_id_field to a field marked External ID and map its key column to it"}
		}
		if !slices.Contains(p.Deferred[e.Child], e.Column) {
			p.Deferred[e.Child] = append(p.Deferred[e.Child], e.Column)
		}
	}
	return nil
}

// reaches reports whether the lookups not deferred lead from table a to b.
func (p *Plan) reaches(a, b string) bool {
	seen := map[string]bool{a: true}
	queue := []string{a}
	for len(queue) > 0 {
		t := queue[0]
		queue = queue[1:]
		if t == b {
			return true
		}
		for _, e := range p.Edges {
			if e.Child == t && !e.Deferred && e.Child != e.Parent && !seen[e.Parent] {
				seen[e.Parent] = true
				queue = append(queue, e.Parent)
			}
		}
	}
	return false
}

// externalIDColumn is the source column mapped to the table's external id
// field ("" when there is none).
func externalIDColumn(tc *pipeline.TableConfig) string {
	if tc.ExternalIDField == "" {
		return ""
	}
	for _, f := range tc.Fields {
		if strings.EqualFold(f.Name, tc.ExternalIDField) {
			return f.Column
		}
	}
	return ""
}

// components numbers the strongly connected components of the tables
// under the edges keep accepts (Tarjan's algorithm).
func (p *Plan) components(names []string, keep func(*Edge) bool) map[string]int {
	adj := map[string][]string{}
	for i := range p.Edges {
		if e := &p.Edges[i]; keep(e) {
			adj[e.Child] = append(adj[e.Child], e.Parent)
		}
	}
	index, low, comp := map[string]int{}, map[string]int{}, map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	next, ncomp := 0, 0
	var visit func(v string)
	visit = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range adj[v] {
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp[w] = ncomp
				if w == v {
					break
				}
			}
			ncomp++
		}
	}
	for _, n := range names {
		if _, seen := index[n]; !seen {
			visit(n)
		}
	}
	return comp
}

// schedule makes the steps, their waits and the waves: a step's wave is
// one more than the latest wave of a step it waits for.
func (p *Plan) schedule(cfg *pipeline.TablesConfig, names []string) {
	type node struct {
		step  Step
		waits map[string]bool
	}
	nodes := map[string]*node{}
	var order []string
	add := func(table string, pass int) *node {
		tc := cfg.Tables[table]
		n := &node{step: Step{ID: StepID(table, pass), Table: table, Pass: pass, Object: tc.SFObject, OnParentFailure: tc.ParentFailure()},
			waits: map[string]bool{}}
		nodes[n.step.ID] = n
		order = append(order, n.step.ID)
		return n
	}
	for _, t := range names {
		n1 := add(t, Pass1)
		deferred := p.Deferred[t]
		for _, f := range cfg.Tables[t].Fields {
			if !slices.Contains(deferred, f.Column) {
				n1.step.Columns = append(n1.step.Columns, f.Column)
			}
		}
		if len(deferred) > 0 {
			n2 := add(t, Pass2)
			n2.step.Columns = append([]string{externalIDColumn(cfg.Tables[t])}, deferred...)
			n2.waits[StepID(t, Pass1)] = true
			n2.step.Reasons = append(n2.step.Reasons, fmt.Sprintf("%s sets %s once the rows they point to have landed", n2.step.ID, strings.Join(deferred, ", ")))
		}
	}
	for _, e := range p.Edges {
		if e.Deferred {
			n := nodes[StepID(e.Child, Pass2)]
			if e.Parent != e.Child {
				n.waits[StepID(e.Parent, Pass1)] = true
			}
			r := e.Reason
			if e.Parent != e.Child {
				r = strings.Replace(r, e.Child+" waits for", n.step.ID+" waits for", 1)
			}
			n.step.Reasons = append(n.step.Reasons, r+" (left out of pass 1: it closes a cycle)")
			continue
		}
		n := nodes[StepID(e.Child, Pass1)]
		n.waits[StepID(e.Parent, Pass1)] = true
		n.step.Reasons = append(n.step.Reasons, e.Reason)
	}
	// Waves by longest path; the graph is acyclic here (breakCycles).
	wave := map[string]int{}
	var level func(id string) int
	level = func(id string) int {
		if w, ok := wave[id]; ok {
			return w
		}
		w := 0
		for dep := range nodes[id].waits {
			w = max(w, level(dep)+1)
		}
		wave[id] = w
		return w
	}
	maxWave := 0
	for _, id := range order {
		maxWave = max(maxWave, level(id))
	}
	p.Waves = make([][]string, maxWave+1)
	for _, id := range order {
		n := nodes[id]
		n.step.Wave = wave[id] + 1
		n.step.Waits = slices.Sorted(func(yield func(string) bool) {
			for w := range n.waits {
				if !yield(w) {
					return
				}
			}
		})
		if n.step.Waits == nil {
			n.step.Waits = []string{}
		}
		if n.step.Reasons == nil {
			n.step.Reasons = []string{}
		}
		p.Waves[wave[id]] = append(p.Waves[wave[id]], id)
	}
	for _, w := range p.Waves {
		sort.Strings(w)
		for _, id := range w {
			p.Steps = append(p.Steps, nodes[id].step)
			if nodes[id].step.Pass == Pass1 {
				p.Tables = append(p.Tables, nodes[id].step.Table)
			}
		}
	}
}

// TableConfig is the table entry a step runs with: pass 1 without the
// deferred columns; pass 2 with only the external id column and the
// deferred ones, as an upsert (each row found again by its external id).
func (p *Plan) TableConfig(cfg *pipeline.TablesConfig, st *Step) (*pipeline.TableConfig, error) {
	orig, ok := cfg.Tables[st.Table]
	if !ok {
		return nil, &pipeline.ConfigError{Setting: "tables." + st.Table, Source: "tables config " + cfg.Path,
			Problem: "the plan loads this table but the tables config no longer defines it",
			Fix:     "restore the entry, or start a new plan run (without --run-id)"}
	}
	tc := *orig
	tc.Fields = nil
	for _, col := range st.Columns {
		var found bool
		for _, f := range orig.Fields {
			if f.Column == col {
				tc.Fields = append(tc.Fields, f)
				found = true
			}
		}
		if !found {
			return nil, &pipeline.ConfigError{Setting: "tables." + st.Table + ".fields", Value: col, Source: "tables config " + cfg.Path,
				Problem: "the plan run maps this column but the tables config no longer does",
				Fix:     "restore the mapping, or start a new plan run (without --run-id)"}
		}
	}
	if st.Pass == Pass2 {
		tc.Operation = "upsert"
	}
	return &tc, nil
}

func withGuess(guess, fix string) string {
	if guess == "" {
		return fix
	}
	return "did you mean " + guess + "? Or " + fix
}

// StepConfig is a tables config holding only the step's table entry as
// the step runs it (TableConfig), under the table's own name: a plain
// single-table run of it (`sfmigrate task ... --table T --tables-config
// F`) is the step. The plan's own keys are left out.
func (p *Plan) StepConfig(cfg *pipeline.TablesConfig, st *Step) ([]byte, error) {
	tc, err := p.TableConfig(cfg, st)
	if err != nil {
		return nil, err
	}
	tc.DependsOn, tc.OnParentFailure = nil, ""
	out := struct {
		StatusTracker salesforce.TrackerConfig         `yaml:"status_tracker"`
		Tables        map[string]*pipeline.TableConfig `yaml:"tables"`
	}{cfg.StatusTracker, map[string]*pipeline.TableConfig{st.Table: tc}}
	data, err := yaml.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("step %s: write its tables config: %w", st.ID, err)
	}
	head := fmt.Sprintf("# Step %s of the plan of %s, written by sfmigrate plan: the table as this step loads it.\n", st.ID, cfg.Path)
	return append([]byte(head), data...), nil
}
