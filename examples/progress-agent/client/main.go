// Command client asks the progress agent (org.goxpc.example.progress)
// through xpcd to do a job, with the client generated from its interface
// (package api), and prints each progress report the agent sends back
// while it works, then the result:
//
//	progress 1/3
//	progress 2/3
//	progress 3/3
//	result: 3 steps, sum of squares 14 (agent pid 1234)
//
// Usage:
//
//	client [-steps 5] [-step-ms 200]
//
// The reports come through a callback: the client passes a local object
// (an api.Progress) to Work, and the agent calls it. The exit status is 1
// if the agent refused the job or failed, 2 if it could not be reached.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/examples/progress-agent/api"
)

func main() {
	steps := flag.Int("steps", 5, "the job's steps")
	stepMS := flag.Int("step-ms", 200, "milliseconds each step takes")
	flag.Parse()
	os.Exit(run(api.Job{Steps: *steps, StepMS: *stepMS}))
}

func run(job api.Job) int {
	c, err := xpc.NewServiceConnection(api.Name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	// Time for the longest job the agent takes, and some.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second+
		time.Duration(min(max(job.Steps, 0), api.MaxSteps)*min(max(job.StepMS, 0), api.MaxStepMS))*time.Millisecond)
	defer cancel()
	res, err := api.NewWorkerClient(c).Work(ctx, job, printer{os.Stdout})
	var re *xpc.RemoteError
	switch {
	case errors.As(err, &re):
		fmt.Fprintln(os.Stderr, "client: the agent:", err)
		return 1
	case err != nil:
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	fmt.Printf("result: %d steps, sum of squares %d (agent pid %d)\n", res.Steps, res.Sum, res.PID)
	return 0
}

// printer is the api.Progress the client passes: the agent's reports
// arrive here, in this process.
type printer struct{ w io.Writer }

// Update prints one report.
func (p printer) Update(_ context.Context, done, total int) error {
	_, err := fmt.Fprintf(p.w, "progress %d/%d\n", done, total)
	return err
}
