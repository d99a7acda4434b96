package nn

import "sync"

// Cache keeps the compiled programs of one or more Runners while the buffers of those that have
// run (Program.BufferBytes each) total at most a byte limit: when a program is run and the total
// is over the limit, the least recently used others are dropped (a dropped program still running
// finishes; the garbage collector frees it afterwards). The program run last is always kept,
// so a limit of 0 keeps exactly one. Programs compiled but not run (Runner.Program) hold no
// buffers and count nothing; at most MaxCachedPrograms programs are kept in all. A Cache is
// safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	limit   int64
	tick    int64
	entries map[cacheKey]*entry
}

type cacheKey struct {
	r     *Runner
	shape string
}

// entry is one cached program; mu is held while it runs and its outputs are read.
type entry struct {
	key  cacheKey
	once sync.Once
	err  error
	mu   sync.Mutex
	prog *Program

	bytes, used int64 // guarded by Cache.mu: buffer size once compiled, last use
}

// MaxCachedPrograms bounds the number of programs a Cache keeps, run or not.
const MaxCachedPrograms = 64

// NewCache returns an empty Cache that keeps programs' buffers up to limit bytes.
func NewCache(limit int64) *Cache {
	return &Cache{limit: limit, entries: map[cacheKey]*entry{}}
}

// Limit returns the byte limit.
func (c *Cache) Limit() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limit
}

// SetLimit changes the byte limit, dropping least recently used programs (all but the last
// used) until the total is within it.
func (c *Cache) SetLimit(bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = bytes
	var last *entry
	for _, e := range c.entries {
		if last == nil || e.used > last.used {
			last = e
		}
	}
	c.evict(last)
}

// Bytes returns the buffer bytes of the programs kept.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var total int64
	for _, e := range c.entries {
		total += e.bytes
	}
	return total
}

// Len returns the number of programs kept (compiled or being compiled).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// get returns the entry of r's program for key, adding an empty one.
func (c *Cache) get(r *Runner, key string) *entry {
	k := cacheKey{r, key}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[k]
	if e == nil {
		e = &entry{key: k}
		c.entries[k] = e
	}
	return e
}

// used marks the compiled e as the most recently used, counting its buffers when it is about
// to run, and evicts others over the limits.
func (c *Cache) used(e *entry, run bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	e.used = c.tick
	if run {
		e.bytes = e.prog.BufferBytes()
	}
	c.evict(e)
}

// remove forgets e (if still cached).
func (c *Cache) remove(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
}

// drop forgets every program of r.
func (c *Cache) drop(r *Runner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries {
		if k.r == r {
			delete(c.entries, k)
		}
	}
}

// evict drops least recently used compiled programs other than keep while the buffers total
// more than the limit, or the programs are more than MaxCachedPrograms. The caller holds c.mu.
func (c *Cache) evict(keep *entry) {
	for {
		var total int64
		var old, oldAny *entry
		for _, e := range c.entries {
			total += e.bytes
			if e == keep || e.used == 0 { // e.used == 0: still compiling
				continue
			}
			if e.bytes > 0 && (old == nil || e.used < old.used) {
				old = e
			}
			if oldAny == nil || e.used < oldAny.used {
				oldAny = e
			}
		}
		switch {
		case total > c.limit && old != nil:
			delete(c.entries, old.key)
		case len(c.entries) > MaxCachedPrograms && oldAny != nil:
			delete(c.entries, oldAny.key)
		default:
			return
		}
	}
}
