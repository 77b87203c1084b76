// Command progress-agent is a per-user agent for the name
// org.goxpc.example.progress, started by xpcd on demand (see
// org.goxpc.example.progress.plist beside it). It shows a callback: its
// contract, the Go interface api.Worker (package api beside it), has a
// method that takes another interface, api.Progress, as an argument.
//
// Work(ctx, job, p) does job's steps one at a time and, after each, calls
// p.Update(ctx, done, total): the client passed a local object as p, the
// generated client sent it as an endpoint, and the agent's p is a generated
// proxy that calls the object in the client's process. When every step is
// done, Work returns the result, and the proxy stops working (a callback
// lives as long as the call). A job larger than api.MaxSteps steps of
// api.MaxStepMS milliseconds is refused before any step. The client in
// client/ prints each report and the result.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/examples/progress-agent/api"
	"github.com/goxpc/xpc/typed"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("progress-agent", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) error {
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		return err
	}
	defer svc.Close()
	l, err := svc.Listen(ctx, api.Name)
	if err != nil {
		return err
	}
	typed.ServeListener(l, api.NewWorkerServer(worker{log: log}))
	log.Info("progress-agent ready", "pid", os.Getpid(), "name", api.Name)
	select {
	case <-ctx.Done():
	case <-svc.Terminating():
		log.Info("xpcd asked us to exit")
	}
	return nil
}

// worker implements api.Worker.
type worker struct {
	log *slog.Logger
}

// Work does job, reporting each step through p.
func (w worker) Work(ctx context.Context, job api.Job, p api.Progress) (api.Result, error) {
	if job.Steps < 1 || job.Steps > api.MaxSteps || job.StepMS < 0 || job.StepMS > api.MaxStepMS {
		return api.Result{}, fmt.Errorf("progress-agent: a job is 1 to %d steps of 0 to %d ms, not %d of %d",
			api.MaxSteps, api.MaxStepMS, job.Steps, job.StepMS)
	}
	if who := typed.PeerFromContext(ctx); who != nil {
		w.log.Info("work", "steps", job.Steps, "step_ms", job.StepMS, "peer", who.String())
	}
	var sum int64
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 1; i <= job.Steps; i++ {
		t.Reset(time.Duration(job.StepMS) * time.Millisecond)
		select {
		case <-ctx.Done():
			return api.Result{}, ctx.Err()
		case <-t.C:
		}
		sum += int64(i) * int64(i)
		if p == nil {
			continue
		}
		if err := p.Update(ctx, i, job.Steps); err != nil {
			return api.Result{}, fmt.Errorf("progress-agent: step %d: %w", i, err)
		}
	}
	return api.Result{Steps: job.Steps, Sum: sum, PID: os.Getpid()}, nil
}
