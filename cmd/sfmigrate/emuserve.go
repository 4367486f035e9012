package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// Limits of the emulator's HTTP server; the handler adds its own (a
// deadline per request, a stall timeout per read and write: sfemu's
// WithRequestTimeout, WithStallTimeout). docs/emulator.md lists them all.
const (
	// emuReadHeaderTimeout bounds how long a client may take to send a
	// request line and headers.
	emuReadHeaderTimeout = 10 * time.Second
	// emuIdleTimeout closes a kept-alive connection without requests.
	emuIdleTimeout = 2 * time.Minute
	// emuGrace is how long requests in flight may take to finish once the
	// emulator is told to stop (SIGTERM, Ctrl-C); then they are cut.
	emuGrace = 5 * time.Second
)

// newEmulatorServer is the http.Server that serves an emulator. Reading a
// whole request and writing a whole answer are bounded by the request
// deadline (the handler moves these deadlines as the bytes flow). base
// is the parent of every request's context: cancelling it stops work in
// flight (a query scanning the org ends at its next record).
func newEmulatorServer(emu http.Handler, base context.Context) *http.Server {
	return &http.Server{
		Handler:           emu,
		ReadHeaderTimeout: emuReadHeaderTimeout,
		ReadTimeout:       sfemu.DefaultRequestTimeout,
		WriteTimeout:      sfemu.DefaultRequestTimeout,
		IdleTimeout:       emuIdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
		// "OPTIONS *" would get net/http's empty 200; let the emulator
		// answer it (404 in the REST envelope) like any unknown resource.
		DisableGeneralOptionsHandler: true,
	}
}

// serveEmulator serves emu on ln until ctx ends, then stops within
// emuGrace whatever is running: requests in flight get the grace to
// finish, then their contexts end and their connections are closed, and
// background job processing is given what is left of the grace.
func serveEmulator(ctx context.Context, ln net.Listener, base string, emu *sfemu.Server) error {
	reqCtx, stopRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRequests()
	srv := newEmulatorServer(emu, reqCtx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("emulator: serve on %s: %w", base, err)
	case <-ctx.Done():
	}
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), emuGrace)
	defer cancel()
	if err := srv.Shutdown(gctx); err != nil {
		// The grace is over with requests still running: end them.
		stopRequests()
		srv.Close() //nolint:errcheck // closing is all that is left to do
	}
	closed := make(chan struct{})
	go func() { emu.Close(); close(closed) }()
	select {
	case <-closed:
	case <-gctx.Done():
		// A job still being processed: it ends with the process.
	}
	return nil
}
