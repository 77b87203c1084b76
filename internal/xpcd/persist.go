package xpcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// writeFileAtomic replaces dir/name with data: temporary file, fsync,
// rename, fsync of the directory. Its errors are *StateWriteError.
func writeFileAtomic(dir, name string, data []byte) error {
	if err := writeAtomic(dir, name, data); err != nil {
		return &StateWriteError{Path: filepath.Join(dir, name), Err: err}
	}
	return nil
}

func writeAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // renamed; only the directory's durability is unknown
	}
	defer d.Close()
	return d.Sync()
}

// removeStaleTemps removes temporary files a crash mid-write left behind.
func removeStaleTemps(dir string, log *slog.Logger) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.Contains(n, ".json.tmp") {
			log.Info("state: removing an unfinished write", "file", n)
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// persister writes one state file from its own goroutine, so that nobody
// waits for the disk unless they ask to. Writes coalesce: only the latest
// contents are written, and everyone waiting for an earlier one is told
// when the latest is durable.
type persister struct {
	dir, name string
	log       *slog.Logger

	mu      sync.Mutex
	pending []byte
	waiters []chan error
	closed  bool
	kick    chan struct{}
	done    chan struct{}
}

func newPersister(dir, name string, log *slog.Logger) *persister {
	p := &persister{dir: dir, name: name, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go p.run()
	return p
}

// put schedules data to be written; the channel receives the result.
func (p *persister) put(data []byte) <-chan error {
	c := make(chan error, 1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c <- errors.New("state store closed")
		return c
	}
	p.pending = data
	p.waiters = append(p.waiters, c)
	select {
	case p.kick <- struct{}{}:
	default: // a write is already due; it will take the latest data
	}
	p.mu.Unlock()
	return c
}

func (p *persister) run() {
	defer close(p.done)
	for range p.kick {
		for {
			p.mu.Lock()
			data, waiters, closed := p.pending, p.waiters, p.closed
			p.pending, p.waiters = nil, nil
			p.mu.Unlock()
			if data == nil {
				if closed {
					return
				}
				break
			}
			err := writeFileAtomic(p.dir, p.name, data)
			if err != nil {
				p.log.Error("state: write failed", "file", p.name, "err", err)
			}
			for _, w := range waiters {
				w <- err
			}
		}
	}
}

// close writes what is pending and stops, waiting until ctx ends at most.
func (p *persister) close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.kick)
	p.mu.Unlock()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("state: %s not flushed: %w", p.name, ctx.Err())
	}
}
