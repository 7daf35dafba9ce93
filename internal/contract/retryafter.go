package contract

import "time"

// RetryAfterSeconds is the Retry-After value for a wait of d: whole seconds,
// rounded up and at least 1, so a client that waits it is never early.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(1, CeilSeconds(d))
}

// CeilSeconds rounds d up to whole seconds; 0 or less is 0.
func CeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
