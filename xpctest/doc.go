// Package xpctest tests XPC services, in the spirit of net/http/httptest:
// a Handler alone, with no connection or xpcd, as httptest.NewRecorder
// tests an http.Handler; and services under their names, through a private
// xpcd that one call starts in a temporary directory and the test's cleanup
// stops.
//
// # A handler alone
//
// NewMessage builds the message a handler would receive, from a Go value
// or a dictionary, and the Recorder of its answer; Handle runs the handler
// as a connection's dispatcher would. The Recorder then has what the caller
// would have got: the reply (Decode), the error (a *xpc.RemoteError, which
// errors.Is and errors.As match against the handler's error), or
// xpc.ErrNoReply; Wait waits for a reply deferred to another goroutine.
//
//	func greet(ctx context.Context, m *xpc.Message) {
//		var req greetRequest
//		if err := m.Decode(&req); err != nil {
//			m.ReplyError(ctx, xpc.ErrorObjectOf(err))
//			return
//		}
//		m.ReplyValue(ctx, greeting{Text: "hello, " + req.Name})
//	}
//
//	func TestGreet(t *testing.T) {
//		m, rec := xpctest.NewMessage(t, greetRequest{Name: "world"})
//		xpctest.Handle(context.Background(), xpc.HandlerFunc(greet), m)
//		var g greeting
//		if err := rec.Decode(&g); err != nil {
//			t.Fatal(err)
//		}
//		if g.Text != "hello, world" {
//			t.Errorf("got %q", g.Text)
//		}
//	}
//
// # A named service
//
// NewServer starts a private xpcd. Server.Serve (or the option
// WithHandler) serves a handler under a name inside the test's own
// process: xpcd launches it on demand, as any job, and stops it when asked
// (xpcctl kill, bootout) or at the test's cleanup. Clients reach it through
// xpcd with Server.Connect.
//
//	func TestGreetServed(t *testing.T) {
//		srv := xpctest.NewServer(t)
//		srv.Serve(t, "org.example.greeter", xpc.HandlerFunc(greet))
//		conn := srv.Connect(t, "org.example.greeter")
//		var g greeting
//		if err := conn.Invoke(t.Context(), greetRequest{Name: "world"}, &g); err != nil {
//			t.Fatal(err)
//		}
//		...
//	}
//
// Start starts a server where there is no testing.TB, as in this package's
// Example.
//
// # Services in processes of their own
//
// The server is an XPCD_ROOT instance: its socket, state and LaunchAgents
// directory live under Server.Root. Programs it starts inherit
// XPCD_ROOT=Root, so the library inside them finds this server and no
// other; Env gives the same variable for commands such as xpcctl. A job
// plist given to WithPlist (AgentPlist writes one) is exec'd as xpcd
// would exec it in production.
//
// A common pattern is to run the test binary itself as the service: give
// AgentPlist the arguments os.Args[0], "-test.run=^TestHelperService$" and
// have TestHelperService serve only when an environment variable set in the
// plist's EnvironmentVariables says so.
//
// What such a service writes to its standard output and error (unless its
// plist names StandardOutPath or StandardErrorPath) goes to the test's log,
// or WithLogger's logger, and the server keeps it: Output returns the lines
// of a job, WaitOutput waits for them. Every line a service wrote before it
// stopped (it exited, was killed, or the server closed) is there.
package xpctest
