package xpcd

import (
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The journal. Each record of a job's log (joblog.go) is also sent to
// the journal socket, when there is one, in systemd's native protocol: a
// datagram of KEY=value lines, a value holding a newline in the binary
// form (KEY, a newline, its length as 64-bit little endian, the value, a
// newline). A writer of xpcd's own rather than a library's, so that the
// socket's path can be a test's. Sends never wait: the socket is
// non-blocking, and a record the journal does not take at once is dropped
// and counted.

// DefaultJournalSocket is Config.JournalSocket's default.
const DefaultJournalSocket = "/run/systemd/journal/socket"

// journal sends records to a journal socket.
type journal struct {
	path  string
	mu    sync.RWMutex // closed and fd: sends hold it for reading
	fd    int
	drops atomic.Uint64

	// quota: users' domains have a quota (when xpcd is root: a user's
	// own xpcd sends only their lines).
	quota  bool
	qmu    sync.Mutex
	quotas map[string]*journalQuota // by domain, for users' domains
}

// The journal rate-limits entries by their sender, and xpcd sends every
// job's: one user's service writing in a loop would use up the limit
// and have the journal drop every other service's lines, root's
// included. So a user's domain sends at most journalBurst records at
// once and journalRate a second after that; the others are dropped
// and counted as the journal's drops (the job's files keep them). The
// system domain's and root's own are not limited, nor a user's own
// xpcd's.
const (
	journalBurst = 1000
	journalRate  = 100
	// maxJournalQuotas bounds the domains remembered; past it, those
	// whose quota is whole again are forgotten, and if none is, a new
	// domain's records are dropped until one is.
	maxJournalQuotas = 4096
)

// journalQuota is what a domain may still send.
type journalQuota struct {
	tokens float64
	at     time.Time
}

// allow reports whether a record of domain dom may be sent now, and
// takes it from dom's quota.
func (j *journal) allow(dom string, now time.Time) bool {
	if !j.quota || dom == DomainSystem || dom == UserDomain(0) {
		return true
	}
	j.qmu.Lock()
	defer j.qmu.Unlock()
	q := j.quotas[dom]
	if q == nil {
		if len(j.quotas) >= maxJournalQuotas {
			for d, o := range j.quotas {
				if o.tokens+now.Sub(o.at).Seconds()*journalRate >= journalBurst {
					delete(j.quotas, d)
				}
			}
			if len(j.quotas) >= maxJournalQuotas {
				return false
			}
		}
		if j.quotas == nil {
			j.quotas = map[string]*journalQuota{}
		}
		q = &journalQuota{tokens: journalBurst, at: now}
		j.quotas[dom] = q
	}
	q.tokens = min(journalBurst, q.tokens+now.Sub(q.at).Seconds()*journalRate)
	q.at = now
	if q.tokens < 1 {
		return false
	}
	q.tokens--
	return true
}

// openJournal returns a writer to the journal socket at path, or nil
// when no socket is there.
func openJournal(path string) (*journal, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if st.Mode().Type() != os.ModeSocket {
		return nil, errors.New(path + " is not a socket")
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	return &journal{path: path, fd: fd, quota: os.Geteuid() == 0}, nil
}

// send sends r as an entry of identifier label, job target. It reports
// whether the journal took it.
func (j *journal) send(r logRecord, label, target string) bool {
	b := make([]byte, 0, len(r.text)+len(label)+len(target)+96)
	b = appendJournalField(b, "MESSAGE", r.text)
	b = appendJournalField(b, "PRIORITY", strconv.Itoa(r.prio))
	b = appendJournalField(b, "SYSLOG_IDENTIFIER", label)
	if r.pid > 0 {
		// OBJECT_PID: journald, which sees xpcd as the sender, adds the
		// service's own OBJECT_UID, OBJECT_COMM, ... while it runs.
		pid := strconv.Itoa(r.pid)
		b = appendJournalField(b, "SYSLOG_PID", pid)
		b = appendJournalField(b, "OBJECT_PID", pid)
	}
	b = appendJournalField(b, "XPC_JOB", target)
	b = appendJournalField(b, "XPC_STREAM", r.stream)
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.fd < 0 {
		return true // closed: not a drop
	}
	// An address of its own for each send: Sendto writes into it.
	addr := unix.SockaddrUnix{Name: j.path}
	if err := unix.Sendto(j.fd, b, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, &addr); err != nil {
		j.drops.Add(1)
		return false
	}
	return true
}

// appendJournalField appends KEY=value, or the binary form when value
// holds a newline.
func appendJournalField(b []byte, key, value string) []byte {
	b = append(b, key...)
	if !strings.Contains(value, "\n") {
		b = append(b, '=')
		b = append(b, value...)
		return append(b, '\n')
	}
	b = append(b, '\n')
	b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
	b = append(b, value...)
	return append(b, '\n')
}

func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fd >= 0 {
		unix.Close(j.fd)
		j.fd = -1
	}
}
