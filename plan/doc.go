// Package plan loads the tables of a tables config in one run: parents
// before children, in waves of tables that may run at the same time, and
// self-references and cycles in two passes.
//
// Build orders the tables from their mappings. A column mapped as a lookup
// by external id (Parent.External_Id__c, Product__r.External_Id__c) makes
// its table wait for every table of the plan that loads an object the
// lookup points to (the target object's describe says which; a polymorphic
// lookup points to several). depends_on in the tables config adds an order
// the mappings cannot show. A lookup from a table to itself, and every
// optional lookup between tables that wait for each other, is deferred:
// pass 1 loads the rows without it, pass 2 (an upsert with only the
// external id and the deferred columns) sets it once every table it points
// to has landed. A cycle whose lookups are all required (or depends_on) is
// refused (CycleError, exit 2) before anything is sent.
//
// Without describe (sfmigrate plan --offline) a lookup is placed by its
// relationship name alone and required fields are unknown; Notes say what
// could not be placed. sfmigrate run always plans from the describes.
//
// Execute runs a plan: one sub-run of the pipeline per step, under
// <work-dir>/runs/<plan-run-id>/runs/<TABLE>[.pass2]/ with its own manifest,
// results under <logs-dir>/<plan-run-id>/<step>/, and the plan and each
// step's state in <work-dir>/runs/<plan-run-id>/plan.json. A step starts
// as soon as the steps it waits for have finished (a wave is the steps that
// can run together at the earliest), within the plan's parallel setting: a
// starting step gets the jobs not in use divided by the steps ready to
// start, at least 1, and keeps that share. A step does not
// start while a step it waits for failed, or ended with failed rows unless
// its table says on_parent_failure: continue; other branches go on.
// Rerunning the plan's run id continues every step where it stopped: each
// sub-run resumes from its manifest.
package plan
