package salesforce

import (
	"context"
	"testing"
	"time"
)

func TestWindowGrowsWithCleanJobsAndHalvesUnderStrain(t *testing.T) {
	w, err := NewWindow(2, 6)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// Two jobs fit; a third waits until one ends.
	for range 2 {
		if err := w.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := w.Acquire(short); err == nil {
		t.Fatal("a third job got into a window of 2")
	}
	got := make(chan error, 1)
	go func() { got <- w.Acquire(ctx) }()
	w.Release(true) // 2 + 1/2
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if l := w.Limit(); l != 2 {
		t.Fatalf("limit after one clean job = %d, want 2 (grows by one per window of clean jobs)", l)
	}
	w.Release(true) // 2.5 + 1/2.5 = 2.9
	w.Release(true) // 2.9 + 0.34 = 3.24
	if l := w.Limit(); l != 3 {
		t.Fatalf("limit after three clean jobs = %d, want 3", l)
	}
	for range 20 {
		if err := w.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		w.Release(true)
	}
	if l := w.Limit(); l != 6 {
		t.Fatalf("limit after many clean jobs = %d, want the maximum 6", l)
	}
	if !w.Shrink("UNABLE_TO_LOCK_ROW on 12% of rows") || w.Limit() != 3 {
		t.Fatalf("after strain: limit %d, want 3", w.Limit())
	}
	// A second signal from the same moment does not halve again...
	if w.Shrink("429") || w.Limit() != 3 {
		t.Fatalf("a burst halved twice: limit %d", w.Limit())
	}
	// ...but one after a window of jobs finished does.
	for range 3 {
		w.Acquire(ctx)
		w.Release(false)
	}
	if !w.Shrink("429") || w.Limit() != 1 {
		t.Fatalf("after a second strain: limit %d, want 1", w.Limit())
	}
	if w.Shrink("more") || w.Limit() != 1 {
		t.Fatalf("went below 1: %d", w.Limit())
	}
	changes, _ := w.Changes()
	if len(changes) < 5 || changes[len(changes)-1].Reason != "429" || changes[len(changes)-1].To != 1 {
		t.Errorf("changes = %+v", changes)
	}
}

func TestWindowShrinksWhenTheAPIAllocationRunsLow(t *testing.T) {
	w, _ := NewWindow(8, 8)
	w.NoteAPIUsage(Usage{Used: 50, Max: 100})
	if w.Limit() != 8 {
		t.Fatalf("shrank at half the allocation: %d", w.Limit())
	}
	w.NoteAPIUsage(Usage{Used: 95, Max: 100})
	if w.Limit() != 4 {
		t.Fatalf("limit at 95%% of the allocation = %d, want 4", w.Limit())
	}
}
