package pipeline

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultPlanStatusRef is the tracker key of a plan when the tables config
// names none (plan_status_ref).
const DefaultPlanStatusRef = "PLAN"

// Values of on_parent_failure.
const (
	OnParentFailureStop     = "stop"
	OnParentFailureContinue = "continue"
)

// PlanRef is the plan's tracker key: plan_status_ref or PLAN.
func (c *TablesConfig) PlanRef() string {
	if c.PlanStatusRef != "" {
		return c.PlanStatusRef
	}
	return DefaultPlanStatusRef
}

// ParentFailure is the table's on_parent_failure, "stop" when not set.
func (t *TableConfig) ParentFailure() string {
	if t.OnParentFailure == "" {
		return OnParentFailureStop
	}
	return strings.ToLower(t.OnParentFailure)
}

// validatePlanKeys checks the keys only plans use: depends_on names tables
// of this config (not the table itself), on_parent_failure is stop or
// continue, plan_status_ref is a plain key.
func (c *TablesConfig) validatePlanKeys(src string) error {
	if c.PlanStatusRef != "" && !tableNameRE.MatchString(c.PlanStatusRef) {
		return &ConfigError{Setting: "plan_status_ref", Value: c.PlanStatusRef, Source: src,
			Problem: "a tracker key may only hold letters, digits, '_' and '-' (it goes into a URL path)", Fix: "use a plain key such as ERP_MIGRATION"}
	}
	names := c.TableNames()
	for _, name := range names {
		t := c.Tables[name]
		switch strings.ToLower(t.OnParentFailure) {
		case "", OnParentFailureStop, OnParentFailureContinue:
		default:
			return &ConfigError{Setting: "tables." + name + ".on_parent_failure", Value: t.OnParentFailure, Source: src,
				Problem: "unknown value", Fix: `use "stop" (default: the table does not start while a table it waits for has failed rows) or "continue"`}
		}
		for _, dep := range t.DependsOn {
			switch _, ok := c.Tables[dep]; {
			case dep == name:
				return &ConfigError{Setting: "tables." + name + ".depends_on", Value: dep, Source: src,
					Problem: "a table cannot wait for itself", Fix: "remove " + dep + " from its depends_on"}
			case !ok:
				return &ConfigError{Setting: "tables." + name + ".depends_on", Value: dep, Source: src,
					Problem: "is not a table of this tables config",
					Fix:     withGuess(Suggest(dep, names), "name tables defined under tables: ("+strings.Join(names, ", ")+")")}
			}
		}
	}
	return nil
}

// MarshalYAML writes the fields as the mapping of column to field that
// UnmarshalYAML reads, in order.
func (l FieldList) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range l {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: f.Column}, &yaml.Node{Kind: yaml.ScalarNode, Value: f.Name})
	}
	return n, nil
}
