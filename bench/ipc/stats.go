package ipc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
)

// procStats is one process's memory and allocation counters.
type procStats struct {
	RSSKiB     int64  `json:"rss_kib"`     // VmRSS from /proc/self/status
	HeapInuse  uint64 `json:"heap_inuse"`  // runtime.MemStats.HeapInuse
	StackInuse uint64 `json:"stack_inuse"` // runtime.MemStats.StackInuse
	Mallocs    uint64 `json:"mallocs"`     // runtime.MemStats.Mallocs, cumulative
	Goroutines int    `json:"goroutines"`
	CPUNanos   int64  `json:"cpu_ns"` // user + system time, getrusage(RUSAGE_SELF)
}

// readStats measures this process. With gc it first collects garbage and
// returns free pages to the system (debug.FreeOSMemory), so that the figures
// are of live memory, not of what the collector has not yet reclaimed.
func readStats(gc bool) (procStats, error) {
	if gc {
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := statusKiB("/proc/self/status", "VmRSS:")
	if err != nil {
		return procStats{}, err
	}
	cpu, err := cpuTime()
	if err != nil {
		return procStats{}, err
	}
	return procStats{
		CPUNanos:   cpu,
		RSSKiB:     rss,
		HeapInuse:  ms.HeapInuse,
		StackInuse: ms.StackInuse,
		Mallocs:    ms.Mallocs,
		Goroutines: runtime.NumGoroutine(),
	}, nil
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime() (int64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), nil
}

// statusKiB reads a "Key:   123 kB" line from a /proc file.
func statusKiB(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(key)) {
			continue
		}
		f := bytes.Fields(line[len(key):])
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, fmt.Errorf("ipc: no %s in %s", key, path)
}

// raiseNoFile raises RLIMIT_NOFILE to n, or as far as the hard limit allows
// when it cannot be raised (not root).
func raiseNoFile(n uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= n {
		return lim.Cur, nil
	}
	want := syscall.Rlimit{Cur: n, Max: max(n, lim.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return n, nil
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}
