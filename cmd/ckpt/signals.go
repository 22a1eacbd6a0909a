package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// received is the signal that cancelled a command's context (nil: none).
var received atomic.Pointer[syscall.Signal]

// signalCtx is cancelled by the first SIGINT or SIGTERM once main has called
// watchSignals (tests that call run directly are never interrupted).
var signalCtx = context.Background()

// watchSignals makes the first SIGINT or SIGTERM cancel signalCtx, keeping its
// number for the exit status (128+n, as shells report a process killed by it).
// The engines stop at their next chunk or write and a writing command removes
// its temporary output. After the first signal the default action is restored,
// so a second one ends the process at once. main calls it first thing, so a
// signal during start-up is caught too.
func watchSignals() {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-ch
		signal.Stop(ch)
		n, ok := s.(syscall.Signal)
		if !ok {
			n = syscall.SIGINT
		}
		received.Store(&n)
		cancel()
		// Work that does not watch the context (parsing a huge header or
		// index) must not hold the process: a command that writes nothing
		// has nothing to clean up, so after a grace period it just exits.
		time.Sleep(stopGrace)
		cleanup.Lock() // held to the end: nothing starts writing after this
		if !cleanup.on {
			msg := cleanup.msg
			if msg == "" {
				msg = "interrupted"
			}
			fmt.Fprintf(os.Stderr, "ckpt: %s (%s)\n", msg, signalName(n))
			os.Exit(128 + int(n))
		}
		cleanup.Unlock()
	}()
	signalCtx = ctx
}

// stopGrace is how long a command has, after a signal, to stop on its own.
const stopGrace = 500 * time.Millisecond

// cleanup is on once a command starts work that must not be ended from
// outside once signalled (repair's writing: it removes its temporary output
// before returning; bisect's report).
var cleanup struct {
	sync.Mutex
	on  bool
	msg string // what the handler says when it ends the command ("" for "interrupted")
}

// setStopMessage sets what the handler says when it ends the command.
func setStopMessage(msg string) {
	cleanup.Lock()
	cleanup.msg = msg
	cleanup.Unlock()
}

// startCleanupSection marks the start of such work: from here on, a signal
// only cancels the context and the command stops on its own.
func startCleanupSection() {
	cleanup.Lock()
	cleanup.on = true
	cleanup.Unlock()
}

// signalContext is the context a command runs under: cancelled by a signal
// (see watchSignals) or by the command's stop.
func signalContext() (context.Context, context.CancelFunc) {
	return context.WithCancel(signalCtx)
}

// interruptedError is a command stopped by a signal; its message says what was
// (not) left behind.
type interruptedError struct {
	msg string
	err error
}

func (e *interruptedError) Error() string { return e.msg }
func (e *interruptedError) Unwrap() error { return e.err }

// interruptExit is the exit status after a signal (128+n), printing one line
// saying what it stopped; ok is false when no signal arrived.
func interruptExit(err error, stderr io.Writer) (code int, ok bool) {
	s := received.Load()
	if s == nil {
		return 0, false
	}
	if !errors.Is(err, context.Canceled) {
		// The work was done before the signal reached a check.
		fmt.Fprintf(stderr, "ckpt: %s received as the command finished; what it printed is complete\n", signalName(*s))
		return 128 + int(*s), true
	}
	msg := "interrupted"
	var ie *interruptedError
	if errors.As(err, &ie) {
		msg = ie.msg
	}
	fmt.Fprintf(stderr, "ckpt: %s (%s)\n", msg, signalName(*s))
	return 128 + int(*s), true
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}
