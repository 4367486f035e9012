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
	w.Release(true) // slow start: 2 -> 3
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if l := w.Limit(); l != 3 {
		t.Fatalf("limit after one clean job = %d, want 3 (slow start: one more per clean job)", l)
	}
	w.Release(true) // the two jobs still in flight end: 3 -> 4 -> 5
	w.Release(true)
	if l, n := w.Limit(), w.InFlight(); l != 5 || n != 0 {
		t.Fatalf("limit %d with %d in flight, want 5 with none", l, n)
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
	// After strain the window grows by one per window of clean jobs:
	// 3 + 1/3 + 1/3.3 + 1/3.6 + 1/3.9 = 4.2.
	for range 4 {
		w.Acquire(ctx)
		w.Release(true)
	}
	if l := w.Limit(); l != 4 {
		t.Fatalf("limit after four clean jobs past strain = %d, want 4", l)
	}
	// A second strain, a window of jobs after the first, halves again.
	if !w.Shrink("429") || w.Limit() != 2 {
		t.Fatalf("after a second strain: limit %d, want 2", w.Limit())
	}
	for range 2 {
		w.Acquire(ctx)
		w.Release(false)
	}
	if !w.Shrink("429") || w.Limit() != 1 {
		t.Fatalf("after a third strain: limit %d, want 1", w.Limit())
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
