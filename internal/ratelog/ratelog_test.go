package ratelog_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/betasync/betasync/internal/ratelog"
)

func TestLimiter(t *testing.T) {
	l := &ratelog.Limiter{Burst: 3, Every: time.Minute}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var ok, last int
	for i := range 1000 {
		v := l.Allow(t0.Add(time.Duration(i) * time.Millisecond))
		if v.OK {
			ok++
		}
		if v.Last {
			last++
		}
		assert.Zero(t, v.Dropped, "no summary within the interval")
	}
	assert.Equal(t, 3, ok)
	assert.Equal(t, 1, last)

	v := l.Allow(t0.Add(time.Minute))
	assert.True(t, v.OK, "a new interval admits again")
	assert.Equal(t, 997, v.Dropped)
	assert.Equal(t, t0, v.Since)

	v = l.Allow(t0) // the clock went back: start again
	assert.True(t, v.OK)
}
