// Package api is the contract of the progress agent
// (org.goxpc.example.progress): the Go interfaces Worker, which the agent
// serves, and Progress, the callback a client passes to Worker.Work and the
// agent calls while it works. The clients and servers of both, in
// worker_xpc.go, are generated from them by xpcgen (docs/TYPED.md, and its
// "Callbacks").
package api

import "context"

//go:generate go -C ../../../gen/xpcgen run . -dir $PWD -type Worker,Progress

// Name is the agent's service name.
const Name = "org.goxpc.example.progress"

// MaxSteps and MaxStepMS bound a Job: the agent refuses larger ones.
const (
	MaxSteps  = 1000
	MaxStepMS = 1000
)

// Worker is what the agent offers.
type Worker interface {
	// Work does job, one step at a time, reporting each step done through
	// p (which may be nil), and returns the result. It stops with p's error
	// if p fails, and with ctx's if ctx ends.
	Work(ctx context.Context, job Job, p Progress) (Result, error)
}

// Progress receives a Work call's progress reports, in the client's
// process, while the call is in progress.
type Progress interface {
	// Update reports that done of total steps are done.
	Update(ctx context.Context, done, total int) error
}

// Job is a piece of work: Steps steps (1 to MaxSteps), each taking StepMS
// milliseconds (0 to MaxStepMS). Step i adds i*i to the result's Sum.
type Job struct {
	Steps  int `xpc:"steps"`
	StepMS int `xpc:"step_ms"`
}

// Result is what Work returns.
type Result struct {
	Steps int   `xpc:"steps"`
	Sum   int64 `xpc:"sum"`
	// PID is the agent's process id.
	PID int `xpc:"pid"`
}
