package codesign

import (
	"container/list"
	"errors"
	"sync"
)

// CacheSize is how many answers a Verifier keeps; past it, the least
// recently used is forgotten.
const CacheSize = 1024

// cacheKey is what an answer depends on.
type cacheKey struct {
	op   uint8   // opVerify, opDigest
	file fileKey // the file
	path string  // where it was found (Verify: for the signature beside it and the messages)
	sig  fileKey // the signature file beside it, as seen before the answer (Verify)
	gen  uint64  // the trust directory's generation (Verify)
}

const (
	opVerify = iota
	opDigest
)

// result is an answer: Verify's info or error, or Digest's digest.
type result struct {
	info   *Info
	digest [32]byte
	err    error
}

// cache is a bounded LRU map of answers. Concurrent askers of the same
// question wait for the first one's answer instead of each computing it
// (hashing a large file once, not once per connection).
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[cacheKey]*list.Element // of *cacheEntry
	lru     list.List                  // most recently used first
	flight  map[cacheKey]*flight
}

type cacheEntry struct {
	key cacheKey
	res result
}

type flight struct {
	done chan struct{}
	res  result
}

func newCache(max int) *cache {
	return &cache{max: max, entries: map[cacheKey]*list.Element{}, flight: map[cacheKey]*flight{}}
}

// do returns the cached answer for k, or computes it with compute, which
// also says whether the answer may be kept.
func (c *cache) do(k cacheKey, compute func() (result, bool)) result {
	c.mu.Lock()
	if e, ok := c.entries[k]; ok {
		c.lru.MoveToFront(e)
		r := e.Value.(*cacheEntry).res
		c.mu.Unlock()
		return r
	}
	if f, ok := c.flight[k]; ok {
		c.mu.Unlock()
		<-f.done
		return f.res
	}
	f := &flight{done: make(chan struct{})}
	c.flight[k] = f
	c.mu.Unlock()

	keep, computed := false, false
	defer func() {
		if !computed { // compute panicked: the waiters must not take a zero answer for a yes
			f.res, keep = result{err: errors.New("codesign: verification failed")}, false
		}
		c.mu.Lock()
		delete(c.flight, k)
		if keep {
			c.put(k, f.res)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	f.res, keep = compute()
	computed = true
	return f.res
}

// put adds an answer, forgetting the least recently used past max.
func (c *cache) put(k cacheKey, r result) {
	if e, ok := c.entries[k]; ok {
		e.Value.(*cacheEntry).res = r
		c.lru.MoveToFront(e)
		return
	}
	for c.lru.Len() >= c.max {
		old := c.lru.Back()
		delete(c.entries, old.Value.(*cacheEntry).key)
		c.lru.Remove(old)
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{key: k, res: r})
}

// len returns the number of answers kept.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
