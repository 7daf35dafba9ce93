package limiter

import (
	"sync/atomic"
	"time"
)

// stallWatch tells whether this process was stopped or starved of CPU for
// a while. The maintain loop notes each of its ticks (every maintainEvery);
// a tick that comes much later than that means nothing of this process
// ran in between: a process stopped (SIGSTOP, a frozen VM or container) or
// starved by its machine. A Redis call that timed out across such a stall
// was timed out by this gateway, not by Redis: the answer may well have
// been waiting in the socket, unread. Such a timeout says nothing about
// Redis, so it does not count towards opening the breaker (its requests
// still get the fallback decision).
//
// It reads the machine's clock, not the Limiter's (a test's fake clock
// does not stall).
type stallWatch struct {
	last atomic.Int64 // unix ns of the last tick (0: none yet)
	// The last stall seen: when it ended and how long it was, in ns.
	end, length atomic.Int64
}

// minStall is the shortest gap beyond maintainEvery taken for a stall;
// shorter ones are ordinary scheduling delay.
const minStall = 20 * time.Millisecond

func (w *stallWatch) tick(now time.Time) {
	n := now.UnixNano()
	last := w.last.Swap(n)
	if gap := time.Duration(n - last); last != 0 && gap > maintainEvery+minStall {
		w.length.Store(int64(gap - maintainEvery))
		w.end.Store(n)
	}
}

// during reports whether this process stalled for at least least (and at
// least minStall) after start: a stall seen to end since, or one going on
// at now (this goroutine runs again, the maintain loop not yet).
func (w *stallWatch) during(start, now time.Time, least time.Duration) bool {
	least = max(least, minStall)
	if last := w.last.Load(); last != 0 && time.Duration(now.UnixNano()-last)-maintainEvery >= least {
		return true
	}
	return w.end.Load() > start.UnixNano() && time.Duration(w.length.Load()) >= least
}
