package appservice_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/appservice"
	"github.com/goxpc/xpc/internal/bundletest"
	"github.com/goxpc/xpc/xpctest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next takes the next status from a Watch.
func next(t *testing.T, ch <-chan appservice.Status, errs <-chan error) appservice.Status {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case err := <-errs:
		t.Fatalf("watch: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("watch: no status came")
	}
	return 0
}

// Register, Status, Watch, Unregister and Register again at once, of a
// bundle's main app and agent, against a private xpcd.
func TestRegisterStatusWatchUnregister(t *testing.T) {
	srv := xpctest.NewServer(t)
	opt := appservice.WithBootstrapSocket(srv.Socket)
	root := bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.asapp",
		Agents: []bundletest.PlistSpec{{Label: "org.example.asapp.agent"}}})
	ctx := testCtx(t)
	app := appservice.MainApp(root, opt)
	if st, err := app.Status(ctx); err != nil || st != appservice.NotRegistered {
		t.Fatalf("status before register: %v %v", st, err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	ch, errs := make(chan appservice.Status, 8), make(chan error, 1)
	go func() {
		for st, err := range app.Watch(wctx) {
			if err != nil {
				errs <- err
				return
			}
			ch <- st
		}
	}()
	if st := next(t, ch, errs); st != appservice.NotRegistered {
		t.Fatalf("watch's first status: %v", st)
	}
	if err := app.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if st := next(t, ch, errs); st != appservice.Enabled {
		t.Fatalf("watch after register: %v", st)
	}
	if st, err := app.Status(ctx); err != nil || st != appservice.Enabled {
		t.Fatalf("status after register: %v %v", st, err)
	}
	if err := app.Unregister(ctx); err != nil {
		t.Fatal(err)
	}
	if st := next(t, ch, errs); st != appservice.NotRegistered {
		t.Fatalf("watch after unregister: %v", st)
	}
	if err := app.Register(ctx); err != nil {
		t.Fatalf("register right after unregister: %v", err)
	}
	if st := next(t, ch, errs); st != appservice.Enabled {
		t.Fatalf("watch after registering again: %v", st)
	}
	agent := appservice.Agent(root, "org.example.asapp.agent.plist", opt)
	if err := agent.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := agent.Status(ctx); err != nil || st != appservice.Enabled {
		t.Fatalf("agent: %v %v", st, err)
	}
	stop()
}

// NotFound and NotRegistered are kept apart, in statuses and in errors.
func TestNotFoundIsNotNotRegistered(t *testing.T) {
	srv := xpctest.NewServer(t)
	opt := appservice.WithBootstrapSocket(srv.Socket)
	root := bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.asnf"})
	ctx := testCtx(t)

	err := appservice.MainApp(root, opt).Unregister(ctx)
	if !errors.Is(err, appservice.ErrNotRegistered) || errors.Is(err, appservice.ErrNotFound) {
		t.Fatalf("unregister of a service not registered: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "Missing.app")
	err = appservice.MainApp(missing, opt).Register(ctx)
	if !errors.Is(err, appservice.ErrNotFound) || errors.Is(err, appservice.ErrNotRegistered) {
		t.Fatalf("register of a bundle that is not there: %v", err)
	}
	var ae *appservice.Error
	if !errors.As(err, &ae) || ae.Reason != "not-found" || ae.Op != "register" || ae.Bundle != missing {
		t.Fatalf("the error: %#v", ae)
	}
	if st, err := appservice.MainApp(missing, opt).Status(ctx); err != nil || st != appservice.NotFound {
		t.Fatalf("status of a bundle that is not there: %v %v", st, err)
	}
	if err := appservice.Agent(root, "none.plist", opt).Register(ctx); !errors.Is(err, appservice.ErrNotFound) {
		t.Fatalf("register of an agent the bundle does not have: %v", err)
	}
	// A bundle whose executable leaves the bundle does not read.
	bad := bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.asbad"})
	if err := os.Remove(filepath.Join(bad, "app")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/sh", filepath.Join(bad, "app")); err != nil {
		t.Fatal(err)
	}
	if err := appservice.MainApp(bad, opt).Register(ctx); !errors.Is(err, appservice.ErrBadBundle) {
		t.Fatalf("register of a malformed bundle: %v", err)
	}
	// A --user instance has no system domain: daemons are refused, as
	// asked of the wrong instance.
	withDaemon := bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.asd",
		Daemons: []bundletest.PlistSpec{{Label: "org.example.asd.daemon"}}})
	err = appservice.Daemon(withDaemon, "org.example.asd.daemon.plist", opt).Register(ctx)
	if !errors.Is(err, appservice.ErrWrongInstance) || errors.Is(err, appservice.ErrNotFound) {
		t.Fatalf("daemon on a --user instance: %v", err)
	}
	if !errors.Is(appservice.ErrDenied, xpc.ErrDenied) {
		t.Fatal("ErrDenied is not xpc.ErrDenied")
	}
}

func TestStatusString(t *testing.T) {
	for st, want := range map[appservice.Status]string{appservice.NotRegistered: "not-registered", appservice.Enabled: "enabled",
		appservice.RequiresApproval: "requires-approval", appservice.NotFound: "not-found", 9: "Status(9)"} {
		if st.String() != want {
			t.Errorf("%d: %q, want %q", int(st), st.String(), want)
		}
		if got, err := appservice.ParseStatus(want); int(st) < 4 && (err != nil || got != st) {
			t.Errorf("ParseStatus(%q): %v %v", want, got, err)
		}
	}
}

// WithSystem and WithUser reach XPCD_ROOT's instance when it is set.
func TestInstanceOptions(t *testing.T) {
	srv := xpctest.NewServer(t)
	t.Setenv("XPCD_ROOT", srv.Root)
	root := bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.asopt"})
	for _, opt := range []appservice.Option{appservice.WithSystem(), appservice.WithUser()} {
		if st, err := appservice.MainApp(root, opt).Status(testCtx(t)); err != nil || st != appservice.NotRegistered {
			t.Fatalf("status: %v %v", st, err)
		}
	}
	t.Setenv("XPCD_ROOT", filepath.Join(t.TempDir(), "none"))
	if _, err := appservice.MainApp(root, appservice.WithSystem()).Status(testCtx(t)); err == nil {
		t.Fatal("status through an xpcd that does not run: no error")
	}
}
