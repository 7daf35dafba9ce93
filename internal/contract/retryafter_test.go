package contract

import (
	"testing"
	"time"
)

func TestRetryAfterSecondsRoundsUpAndIsNeverZero(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		-time.Second: 1, 0: 1, time.Millisecond: 1, time.Second: 1,
		1001 * time.Millisecond: 2, 20 * time.Second: 20,
	} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%s) = %d, want %d", d, got, want)
		}
	}
	for d, want := range map[time.Duration]int64{-time.Second: 0, 0: 0, time.Nanosecond: 1, 2 * time.Second: 2} {
		if got := CeilSeconds(d); got != want {
			t.Errorf("CeilSeconds(%s) = %d, want %d", d, got, want)
		}
	}
}
