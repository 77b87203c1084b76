package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// print of a job is shown as systemctl status shows a unit: a state line,
// then the running instance and its definition ("Program:", "Arguments:",
// "User:", "Memory:", "CPU:", ...), how the last instance ended and why the
// last launch failed ("Last exit:", "Error:"), then every other key of the reply as
// renderDict shows it, then the last lines of its log. print of a domain,
// and --json, show the reply as it is.

// statusKeys are the keys the status block shows; renderPrint lists the
// others after it.
var statusKeys = map[string]bool{
	bootstrap.KeyLabel: true, bootstrap.KeyDomain: true, bootstrap.KeyState: true, "since": true,
	bootstrap.KeyPID: true, bootstrap.KeyLaunchReason: true, "requester_pid": true, "started_at": true,
	"program": true, "arguments": true, "user_name": true, "group_name": true, "uid": true, "gid": true,
	"user": true, "group": true, "working_directory": true, "stdin": true, "stdout": true, "stderr": true,
	"rss_bytes": true, "cgroup": true, "cgroup_memory_bytes": true, "threads": true, "cpu_user_ms": true,
	"cpu_system_ms": true, "environment": true, "environment_names": true, "log": true,
	bootstrap.KeyLastExit: true, "last_exit_at": true, "error": true,
}

func renderPrint(w io.Writer, reply *xpc.Dictionary) { renderPrintAt(w, reply, time.Now()) }

// renderPrintAt renders print's reply as of now (for uptimes).
func renderPrintAt(w io.Writer, reply *xpc.Dictionary, now time.Time) {
	label, err := reply.String(bootstrap.KeyLabel)
	if err != nil {
		renderDict(w, reply) // a domain
		return
	}
	str := func(k string) string { s, _ := reply.String(k); return s }
	dom, state := str(bootstrap.KeyDomain), str(bootstrap.KeyState)
	mark := "○"
	if state == "running" {
		mark = "●"
	}
	fmt.Fprintf(w, "%s %s/%s\n", mark, dom, label)
	var block [][2]string
	line := func(k, v string) {
		if v != "" {
			block = append(block, [2]string{k, v})
		}
	}
	line("State", stateText(reply, state, now))
	if pid, err := reply.Int64(bootstrap.KeyPID); err == nil {
		line("PID", fmt.Sprintf("%d%s", pid, launchText(reply)))
	} else if r := launchText(reply); r != "" && reply.Get("started_at") != nil {
		line("PID", "none (in process)"+r)
	}
	line("Program", str("program"))
	if a, ok := reply.Get("arguments").(xpc.Array); ok {
		line("Arguments", argvText(stringsOf(a)))
	}
	if u := userText(reply); u != "" {
		line("User", u)
	}
	line("Directory", str("working_directory"))
	for _, k := range []string{"stdin", "stdout", "stderr"} {
		if s := str(k); s != "" {
			line(strings.ToUpper(k[:1])+k[1:], s)
		}
	}
	if m := memoryText(reply); m != "" {
		line("Memory", m)
	}
	if c := cpuText(reply); c != "" {
		line("CPU", c)
	}
	// How the last instance ended, and why the last launch failed, are
	// what one looks for after a crash: here, not among the details.
	line("Last exit", lastExitText(reply, now))
	line("Error", str("error"))
	width := 0
	for _, l := range block {
		width = max(width, len(l[0]))
	}
	for _, l := range block {
		fmt.Fprintf(w, "%*s: %s\n", width, l[0], l[1])
	}
	renderEnv(w, reply)
	renderRest(w, reply)
	if lines, ok := reply.Get("log").(xpc.Array); ok && len(lines) > 0 {
		fmt.Fprintln(w, "\nLog:")
		for _, s := range stringsOf(lines) {
			fmt.Fprintln(w, "  "+shown(s))
		}
	}
}

// stateText is "running since T; 5m ago", with the instance's uptime
// while it runs.
func stateText(reply *xpc.Dictionary, state string, now time.Time) string {
	s := state
	at, ok := reply.Get("started_at").(xpc.Date)
	if !ok {
		at, ok = reply.Get("since").(xpc.Date)
	}
	if ok {
		t := at.Time()
		s += fmt.Sprintf(" since %s; %s ago", t.In(now.Location()).Format("2006-01-02 15:04:05 MST"), now.Sub(t).Truncate(time.Second))
	}
	return s
}

// lastExitText is "exited with status 2 at T; 5s ago", or "".
func lastExitText(reply *xpc.Dictionary, now time.Time) string {
	s, _ := reply.String(bootstrap.KeyLastExit)
	if at, ok := reply.Get("last_exit_at").(xpc.Date); ok && s != "" {
		t := at.Time()
		s += fmt.Sprintf(" at %s; %s ago", t.In(now.Location()).Format("2006-01-02 15:04:05 MST"), now.Sub(t).Truncate(time.Second))
	}
	return s
}

// launchText is " (why it was launched)", or "".
func launchText(reply *xpc.Dictionary) string {
	why, err := reply.String(bootstrap.KeyLaunchReason)
	if err != nil {
		return ""
	}
	if pid, err := reply.Int64("requester_pid"); err == nil {
		return fmt.Sprintf(" (launched: %s, by pid %d)", why, pid)
	}
	return " (launched: " + why + ")"
}

// userText is "alice (uid 501), group staff (gid 20)" of the running
// process, or the definition's UserName and GroupName.
func userText(reply *xpc.Dictionary) string {
	name := func(nameKey, idKey string) string {
		id, err := reply.Int64(idKey)
		if err != nil {
			return ""
		}
		if n, err := reply.String(nameKey); err == nil {
			return fmt.Sprintf("%s (%s %d)", n, idKey, id)
		}
		return fmt.Sprintf("%s %d", idKey, id)
	}
	if u := name("user", "uid"); u != "" {
		if g := name("group", "gid"); g != "" {
			return u + ", group " + g
		}
		return u
	}
	var parts []string
	if u, err := reply.String("user_name"); err == nil {
		parts = append(parts, u)
	}
	if g, err := reply.String("group_name"); err == nil {
		parts = append(parts, "group "+g)
	}
	return strings.Join(parts, ", ")
}

func memoryText(reply *xpc.Dictionary) string {
	rss, err := reply.Int64("rss_bytes")
	if err != nil {
		return ""
	}
	s := byteSize(rss) + " resident"
	if n, err := reply.Int64("threads"); err == nil {
		s += fmt.Sprintf(", %d thread", n)
		if n != 1 {
			s += "s"
		}
	}
	if cg, err := reply.Int64("cgroup_memory_bytes"); err == nil {
		c, _ := reply.String("cgroup")
		s += fmt.Sprintf("; cgroup %s: %s", c, byteSize(cg))
	}
	return s
}

func cpuText(reply *xpc.Dictionary) string {
	u, err1 := reply.Int64("cpu_user_ms")
	sys, err2 := reply.Int64("cpu_system_ms")
	if err1 != nil || err2 != nil {
		return ""
	}
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	return fmt.Sprintf("%v (user %v, system %v)", ms(u+sys), ms(u), ms(sys))
}

// byteSize is n in B, K, M or G (of 1024), as systemctl status shows
// memory.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, suffix := float64(n)/unit, "K"
	for _, s := range []string{"M", "G", "T"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return fmt.Sprintf("%.1f%s", v, suffix)
}

// renderEnv lists the environment the job sets: NAME=value, or the names
// alone when xpcd shows the caller no values.
func renderEnv(w io.Writer, reply *xpc.Dictionary) {
	if env, ok := reply.Get("environment").(*xpc.Dictionary); ok && env.Len() > 0 {
		fmt.Fprintln(w, "Environment:")
		for _, k := range env.Keys() {
			v, _ := env.String(k)
			fmt.Fprintf(w, "  %s=%s\n", shown(k), shown(v))
		}
	} else if names, ok := reply.Get("environment_names").(xpc.Array); ok && len(names) > 0 {
		fmt.Fprintln(w, "Environment (values shown to root and the domain's user):")
		for _, k := range stringsOf(names) {
			fmt.Fprintln(w, "  "+k)
		}
	}
}

// renderRest lists the reply's other keys, as renderDict does.
func renderRest(w io.Writer, reply *xpc.Dictionary) {
	header := false
	for _, k := range reply.Keys() {
		if statusKeys[k] {
			continue
		}
		if !header {
			fmt.Fprintln(w, "Details:")
			header = true
		}
		renderValue(w, k, reply.Get(k), 1)
	}
}

func stringsOf(a xpc.Array) []string {
	out := make([]string, 0, len(a))
	for _, o := range a {
		if s, ok := o.(xpc.String); ok {
			out = append(out, string(s))
		}
	}
	return out
}

// argvText joins argv with spaces, quoting an argument that is empty or
// holds a space, a quote or a control character.
func argvText(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = a
		if a == "" || strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == '"' || r == '\'' || r == 0x7f }) {
			out[i] = strconv.Quote(a)
		}
	}
	return strings.Join(out, " ")
}
