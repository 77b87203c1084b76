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
// check-limit. Root's lookups are not counted. A post of a system
// notification a grant allows (notify_session.go) checks the poster the
// same way, and counts the same.
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

// acquire takes a check for a lookup of name by a client of bucket, or
// says why not.
func (l *checkLimiter) acquire(bucket uint32, name string) *opError {
	re := l.take(bucket)
	if re == nil {
		return nil
	}
	oe := ruleOpError(re, "service %s: %s", name, re.Detail)
	oe.reason = bootstrap.ReasonBusy
	return oe
}

// take takes a check for a client of bucket (a lookup's, or a post's of
// a granted notification), or says which rule refuses it.
func (l *checkLimiter) take(bucket uint32) *RuleError {
	if bucket == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var detail string
	switch {
	case l.byUser[bucket] >= maxChecksPerUser:
		detail = fmt.Sprintf("%s has %d lookups or posts being checked against requirements, the limit", bucketName(bucket), l.byUser[bucket])
	case l.nonRoot >= maxChecks:
		detail = fmt.Sprintf("users other than root have %d lookups or posts being checked against requirements, the limit for all of them", l.nonRoot)
	default:
		if l.byUser == nil {
			l.byUser = map[uint32]int{}
		}
		l.byUser[bucket]++
		l.nonRoot++
		return nil
	}
	return refusedBy(bootstrap.RuleCheckLimit, "%s", detail)
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
