package pipeline

// EventKind says what happened.
type EventKind int

// Event kinds.
const (
	EventStepStarted    EventKind = iota // Step
	EventStepDone                        // Step, Err (nil: done)
	EventRows                            // Rows: rows extracted so far in this process
	EventBatchExtracted                  // Batch, Rows, Bytes, Path
	EventJobCreated                      // Batch, JobID
	EventJobDone                         // Batch, JobID, State, Processed, Failed, Message (job error message)
	EventResults                         // Batch, JobID, State (the result kind: successful, failed, unprocessed), Rows, Path
	EventWarning                         // Message
	EventInfo                            // Message
	// EventRejected: Batch, Rows (rows of the batch rejected), Path (its
	// rejected file). Appended last so the other kinds keep their values.
	EventRejected
)

// Event is one progress report. Only the fields named for its Kind are set.
type Event struct {
	Kind        EventKind
	Step        string
	Batch       int
	Path        string
	Rows        int64
	Bytes       int64
	JobID       string
	State       string
	Processed   int64
	Failed      int64
	Unprocessed int64
	Message     string
	Err         error
}

// Reporter receives progress events. Implementations must be safe for
// concurrent use and must not block for long: events come from the
// extraction and upload goroutines.
type Reporter interface {
	Report(Event)
}

// ReporterFunc adapts a function to Reporter.
type ReporterFunc func(Event)

// Report calls f(e).
func (f ReporterFunc) Report(e Event) { f(e) }

type nopReporter struct{}

func (nopReporter) Report(Event) {}

var (
	_ Reporter = ReporterFunc(nil)
	_ Reporter = nopReporter{}
)
