package salesforce

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// Class says what a failure means for whoever might repeat the work: the
// one classification every retry decision of sfmigrate reads, in the client
// (shouldRetry, WaitJob, the loader) and in the pipeline (which batches to
// try again in the same run).
type Class int

// The classes of Classify.
const (
	// ClassNone is the class of a nil error.
	ClassNone Class = iota
	// ClassTransient failures may not meet a later attempt: no answer (reset,
	// timeout, refused connection), 429, 5xx, an expired session (401
	// INVALID_SESSION_ID), lock contention (UNABLE_TO_LOCK_ROW) and the
	// concurrent-request limit (salesforce-api.md §6.3, §6.4). Whether the
	// very same request may be sent again is a second question, answered
	// per call (see shouldRetry): a lost answer to "create job" is
	// transient, yet only a new job, never a repeat, is safe.
	ClassTransient
	// ClassRefused failures are Salesforce's considered answer: a repeat gets the
	// same one (a 4xx such as INVALID_FIELD, NOT_FOUND, the daily
	// REQUEST_LIMIT_EXCEEDED, a second upload to one job).
	ClassRefused
	// ClassConfig failures say the connection settings are wrong: the login was
	// refused (client id, secret, app settings), the host name does not
	// exist, an https URL is served in plain HTTP, the certificate is not
	// trusted, or Config itself is unusable.
	ClassConfig
	// ClassOther is everything else: local failures (a file, the disk), a
	// context that ended, a job that did not finish within JobTimeout, an
	// answer that is not what the API documents.
	ClassOther
)

// String names the class.
func (c Class) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassTransient:
		return "transient"
	case ClassRefused:
		return "refused"
	case ClassConfig:
		return "config"
	}
	return "other"
}

// Classify sorts err into a Class. It looks through wrapping, so the
// errors of every call of this package (and errors that wrap them) can be
// given as they are.
func Classify(err error) Class {
	if err == nil {
		return ClassNone
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrJobTimeout) {
		return ClassOther
	}
	var cfgErr *ConfigError
	if errors.As(err, &cfgErr) || permanentNetError(err) {
		return ClassConfig
	}
	var authErr *AuthError
	if errors.As(err, &authErr) {
		if authErr.Status >= 500 || authErr.Status == http.StatusTooManyRequests || authErr.Code == "rate_limit_exceeded" {
			return ClassTransient
		}
		return ClassConfig
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.Status == http.StatusTooManyRequests || apiErr.Status >= 500,
			sessionExpired(apiErr),
			apiErr.HasCode("UNABLE_TO_LOCK_ROW"),
			concurrencyLimit(apiErr):
			return ClassTransient
		case apiErr.Status >= 400:
			return ClassRefused
		}
		return ClassOther
	}
	if isNoAnswer(err) {
		return ClassTransient
	}
	return ClassOther
}

// sessionExpired reports a 401 that a new token cures (salesforce-api.md
// §1.4): INVALID_SESSION_ID, or a 401 without an error list.
func sessionExpired(e *APIError) bool {
	return e.Status == http.StatusUnauthorized && (e.HasCode("INVALID_SESSION_ID") || len(e.Errors) == 0)
}

// concurrencyLimit reports the concurrent-request limit, as opposed to the
// daily allocation (final for the day).
func concurrencyLimit(e *APIError) bool {
	return e.HasCode("REQUEST_LIMIT_EXCEEDED") && isConcurrencyLimit(e.messageOf("REQUEST_LIMIT_EXCEEDED"))
}

// refusedBeforeWork reports answers that prove the request was not carried
// out, so that any call may be sent again: 429, 502 (the edge could not
// reach the instance), 503, lock contention and the concurrency limit
// (salesforce-api.md §6.4).
func refusedBeforeWork(e *APIError) bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusBadGateway ||
		e.Status == http.StatusServiceUnavailable || e.HasCode("UNABLE_TO_LOCK_ROW") || concurrencyLimit(e)
}

// slowDown reports answers that ask the client as a whole to send less:
// 429 and the concurrent-request limit, from the API or the token endpoint.
func slowDown(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status == http.StatusTooManyRequests || concurrencyLimit(apiErr)
	}
	var authErr *AuthError
	return errors.As(err, &authErr) && (authErr.Status == http.StatusTooManyRequests || authErr.Code == "rate_limit_exceeded")
}

// pacer holds back every call of one Client after Salesforce asked to slow
// down. The loaders of a parallel load share their Client, so one 429 (or
// concurrency-limit answer) pauses all of them together, instead of each
// worker finding the limit by itself and the retries arriving as a burst.
type pacer struct {
	mu    sync.Mutex
	until time.Time // guarded by mu: no call is sent before this
}

// pause holds back every call for d from now (a longer pause already set
// stays).
func (p *pacer) pause(d time.Duration) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := time.Now().Add(d); t.After(p.until) {
		p.until = t
	}
	return p.until
}

// wait blocks until the pause set by pause is over, or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		d := time.Until(p.until)
		p.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}
