package xpcd

import (
	"os/user"
	"strconv"
	"sync"
	"time"
)

// Limits per user (connections, waiting clients, watchers) count what a
// user holds under a bucket. A uid with an account in the user database
// is its own bucket; every uid without one shares one bucket (noAccount).
// A user who owns a range of subordinate uids (/etc/subuid, newuidmap) can
// connect from a user namespace as thousands of kernel uids, none of which
// has an account: counted apart, they would multiply every limit.
const noAccount = ^uint32(0) - 1

// bucketTTL is how long an answer of the user database is kept, so that an
// account made or removed is seen within it.
const bucketTTL = time.Minute

// maxBucketCache bounds the cache; past it, it starts afresh.
const maxBucketCache = 4096

// buckets maps uids to buckets, with a cache of the user database's
// answers. Its methods are safe for concurrent use.
type buckets struct {
	mu    sync.Mutex
	known map[uint32]bucketAnswer
	now   func() time.Time
	// lookup says whether uid has an account; user.LookupId by default.
	lookup func(uid uint32) bool
}

type bucketAnswer struct {
	account bool
	at      time.Time
}

func newBuckets() *buckets {
	return &buckets{known: map[uint32]bucketAnswer{}, now: time.Now, lookup: func(uid uint32) bool {
		_, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
		return err == nil
	}}
}

// of returns uid's bucket. Root is always its own.
func (b *buckets) of(uid uint32) uint32 {
	if uid == 0 {
		return 0
	}
	b.mu.Lock()
	a, ok := b.known[uid]
	lookup := b.lookup
	b.mu.Unlock()
	if !ok || b.now().Sub(a.at) > bucketTTL {
		a = bucketAnswer{account: lookup(uid), at: b.now()}
		b.mu.Lock()
		if len(b.known) >= maxBucketCache {
			clear(b.known)
		}
		b.known[uid] = a
		b.mu.Unlock()
	}
	if a.account {
		return uid
	}
	return noAccount
}

// setLookup replaces how accounts are looked up, and forgets what the old
// way said (tests).
func (b *buckets) setLookup(lookup func(uid uint32) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lookup = lookup
	clear(b.known)
}

// bucketName says who a bucket is, for people.
func bucketName(bucket uint32) string {
	if bucket == noAccount {
		return "uids without an account"
	}
	return "uid " + strconv.FormatUint(uint64(bucket), 10)
}
