package redisqueue

import (
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

var (
	// ErrEmpty is returned by Pop when nothing arrived within its timeout.
	// It wraps redis.Nil, so errors.Is(err, redis.Nil) also holds.
	ErrEmpty = fmt.Errorf("queue empty: %w", redis.Nil)

	// ErrNotHeld is returned by Ack when the entry is no longer in this
	// instance's processing list: it was already acked, or another instance
	// recovered it after this instance's heartbeat lapsed (that instance now
	// owns it). Nothing was changed.
	ErrNotHeld = errors.New("entry not in this instance's processing list")

	// ErrBadOptions is wrapped by Options.Validate errors.
	ErrBadOptions = errors.New("bad redis queue options")
)
