package xpcd

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/goxpc/xpc/internal/criteria"
)

// machineCriteria is the criteria component of a daemon given no
// Config.Criteria: the machine's own sources (criteria.NewLinux), made
// when the daemon starts and closed when it stops. Until then, and after,
// every condition is unknown.
type machineCriteria struct {
	log     *slog.Logger
	src     atomic.Pointer[criteria.Linux]
	changed chan struct{} // never sent on before start; see Changed
}

// dialBudget bounds how long starting the criteria sources may take (the
// system bus is dialled then).
const dialBudget = 2 * time.Second

func newMachineCriteria(log *slog.Logger) *machineCriteria {
	return &machineCriteria{log: log, changed: make(chan struct{})}
}

func (c *machineCriteria) name() string { return "criteria" }

func (c *machineCriteria) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, dialBudget)
	defer cancel()
	src, err := criteria.NewLinux(ctx, criteria.Config{Log: c.log})
	if err != nil {
		return err
	}
	c.src.Store(src)
	return nil
}

func (c *machineCriteria) close(context.Context) error {
	if src := c.src.Swap(nil); src != nil {
		return src.Close()
	}
	return nil
}

// Read implements criteria.Sources.
func (c *machineCriteria) Read(ctx context.Context, cond criteria.Condition, uid uint32) criteria.Fact {
	if src := c.src.Load(); src != nil {
		return src.Read(ctx, cond, uid)
	}
	return criteria.Fact{Why: "xpcd's criteria sources are not running"}
}

// Changed implements criteria.Sources. The supervisor asks for it once it
// runs, after this component started.
func (c *machineCriteria) Changed() <-chan struct{} {
	if src := c.src.Load(); src != nil {
		return src.Changed()
	}
	return c.changed
}

// Close implements criteria.Sources; the daemon closes the component.
func (c *machineCriteria) Close() error { return nil }
