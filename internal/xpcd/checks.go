package xpcd

import (
	"fmt"
	"sync"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// Checking a client against a name's requirement holds the client's socket,
// a pidfd, its /proc directory and its executable open, and may hash that
// executable, a file the client chose, off the loop. A user could start
// any number of them with pipelined lookups and take xpcd's descriptors
// and CPU. So few run at once: at most maxChecksPerUser for one user
// (bucket) other than root, and maxChecks for all of them together; a
// lookup past either is refused at once with reason busy and rule
// check-limit. Root's lookups are not counted.
const (
	maxChecksPerUser = 4
	maxChecks        = 16
)

// checkLimiter counts the requirement checks in progress.
type checkLimiter struct {
	mu      sync.Mutex
	byUser  map[uint32]int
	nonRoot int
}

// acquire takes a check for a client of bucket, or says why not.
func (l *checkLimiter) acquire(bucket uint32, name string) *opError {
	if bucket == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var detail string
	switch {
	case l.byUser[bucket] >= maxChecksPerUser:
		detail = fmt.Sprintf("%s has %d lookups being checked against requirements, the limit", bucketName(bucket), l.byUser[bucket])
	case l.nonRoot >= maxChecks:
		detail = fmt.Sprintf("users other than root have %d lookups being checked against requirements, the limit for all of them", l.nonRoot)
	default:
		if l.byUser == nil {
			l.byUser = map[uint32]int{}
		}
		l.byUser[bucket]++
		l.nonRoot++
		return nil
	}
	re := refusedBy(bootstrap.RuleCheckLimit, "%s", detail)
	oe := ruleOpError(re, "service %s: %s", name, re.Detail)
	oe.reason = bootstrap.ReasonBusy
	return oe
}

// release gives back a check acquire took for bucket.
func (l *checkLimiter) release(bucket uint32) {
	if bucket == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byUser[bucket]--; l.byUser[bucket] <= 0 {
		delete(l.byUser, bucket)
	}
	l.nonRoot--
}
