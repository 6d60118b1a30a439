// Package ratelog bounds how many log lines a flood of one kind of event
// can write: at most Burst lines per interval; the lines dropped are
// counted and reported in one summary line when the next interval begins
// (with the next event: there is no timer to own).
package ratelog

import (
	"sync"
	"time"
)

// Limiter admits log lines. The zero value admits nothing; set Burst and
// Every. It is safe for concurrent use.
type Limiter struct {
	Burst int
	Every time.Duration

	mu      sync.Mutex
	start   time.Time // of the current interval
	logged  int       // lines admitted in it
	dropped int       // lines dropped in it
}

// Verdict is what to write for one event.
type Verdict struct {
	OK   bool // write this event's line
	Last bool // it is the last line admitted in this interval: say so
	// Dropped lines of the previous interval (since Since): write one
	// summary line first when it is above zero.
	Dropped int
	Since   time.Time
}

// Allow decides for one event at now.
func (l *Limiter) Allow(now time.Time) Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v Verdict
	if now.Sub(l.start) >= l.Every || now.Before(l.start) {
		v.Dropped, v.Since = l.dropped, l.start
		l.start, l.logged, l.dropped = now, 0, 0
	}
	v.OK = l.logged < l.Burst
	if v.OK {
		l.logged++
		v.Last = l.logged == l.Burst
	} else {
		l.dropped++
	}
	return v
}
