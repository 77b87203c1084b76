package main

import (
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// SIGINT (Ctrl-C) ends a command that waits on something no context
// stops, standard input here, soon (interruptGrace), as a signal it had
// not caught would.
func TestInterruptEndsReadingCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds xpcctl")
	}
	bin := filepath.Join(t.TempDir(), "xpcctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"plist", "print", "-"}, {"decode"}} {
		cmd := exec.Command(bin, args...)
		stdin, err := cmd.StdinPipe() // never written, never closed
		if err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // its handler in place
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
				t.Errorf("%v after SIGINT: %v, want killed by SIGINT", args, err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%v still runs 10s after SIGINT", args)
		}
	}
}
