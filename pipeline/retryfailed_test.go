package pipeline

import "testing"

// checkIdentity asserts every source row has exactly one final outcome.
func checkIdentity(t *testing.T, what string, m *Manifest) Totals {
	t.Helper()
	tot := m.Totals()
	if got := tot.Successful + tot.Failed + tot.Unprocessed + tot.Rejected; got != tot.Rows {
		t.Errorf("%s: successful %d + failed %d + unprocessed %d + rejected %d = %d, want rows %d",
			what, tot.Successful, tot.Failed, tot.Unprocessed, tot.Rejected, got, tot.Rows)
	}
	return tot
}

// TestTotalsIdentityOverRetries: Rows (written + rejected source rows) =
// Successful + Failed + Unprocessed + Rejected, over record-level
// follow-ups, rejected rows and a --retry-failed round that finds some of
// the rows again (one rejected again, one not found).
func TestTotalsIdentityOverRetries(t *testing.T) {
	done := func(rows, processed, failed int64) *BatchState {
		return &BatchState{Rows: rows, JobID: "750" + string(rune('a'+rows%26)), JobState: "JobComplete", Processed: processed, Failed: failed}
	}
	// Batch 1: 100 rows written, 2 rejected; 5 failed (3 lock errors sent
	// again in attempt 2, which landed them).
	b1 := done(100, 100, 5)
	b1.Index, b1.Rejected, b1.RejectedFile, b1.RetriedFailed, b1.Settled = 1, 2, "r1.csv", 3, true
	fu1 := done(3, 3, 0)
	fu1.Index, fu1.Origin, fu1.Attempt = followUpIndex(1, 2), 1, 2
	b1.FollowUp = fu1.Index
	// Batch 2: its job failed after 20 rows (1 failed); 30 unprocessed
	// landed in attempt 2.
	b2 := &BatchState{Index: 2, Rows: 50, JobID: "750b2", JobState: "Failed", Processed: 20, Failed: 1, Settled: true,
		Results: map[string]*ResultFile{ResultUnprocessed: {Path: "u.csv", Rows: 30}}, RetriedUnprocessed: 30}
	fu2 := done(30, 30, 0)
	fu2.Index, fu2.Origin, fu2.Attempt = followUpIndex(2, 2), 2, 2
	b2.FollowUp = fu2.Index
	// Batch 3: every row rejected, no job.
	b3 := &BatchState{Index: 3, Rejected: 4, RejectedFile: "r3.csv"}
	m := &Manifest{Batches: []*BatchState{b1, b2, b3, fu1, fu2}}
	before := checkIdentity(t, "before the retry round", m)
	if before.Rows != 156 || before.Successful != 147 || before.Failed != 3 || before.Unprocessed != 0 || before.Rejected != 6 {
		t.Errorf("before the retry round: %+v", before)
	}

	// The retry round: of batch 1's chain, 1 of the 3 final failures is
	// found (attempt 3 fails it again) and both rejected rows (one is
	// rejected again); batch 3's 4 rejected rows are all found and land.
	fu3 := done(2, 2, 1)
	fu3.Index, fu3.Origin, fu3.Attempt, fu3.Via, fu3.RetryFrom = followUpIndex(1, 3), 1, 3, ViaRetryFailed, 2
	fu3.Rejected, fu3.RejectedFile = 1, "r1-3.csv"
	fu1.FollowUp, fu1.Settled, fu1.RetriedFailed = fu3.Index, true, 1
	b1.RetriedRejected = 2
	fu4 := done(4, 4, 0)
	fu4.Index, fu4.Origin, fu4.Attempt, fu4.Via, fu4.RetryFrom = followUpIndex(3, 2), 3, 2, ViaRetryFailed, 1
	b3.FollowUp, b3.Settled, b3.RetriedRejected = fu4.Index, true, 4
	m.Batches = append(m.Batches, fu3, fu4)
	after := checkIdentity(t, "after the retry round", m)
	if after.Rows != 156 || after.Successful != 152 || after.Failed != 3 || after.Rejected != 1 || after.Batches != 3 ||
		after.FollowUpJobs != 4 || after.Retried != 3+30+1+2+4 {
		t.Errorf("after the retry round: %+v", after)
	}
}

func TestNumberKey(t *testing.T) {
	for in, want := range map[string]string{"12.50": "12.5", "12.0": "12", "-0.00": "0", "0": "0", "42": "42", "1.5e3": "1.5e3", "abc": "abc"} {
		if got := numberKey(in); got != want {
			t.Errorf("numberKey(%q) = %q, want %q", in, got, want)
		}
	}
}
