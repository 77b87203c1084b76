// Package ipc compares goxpc connections with other ways two local
// processes exchange a request and its reply: raw AF_UNIX sockets (the
// floor), D-Bus through a private dbus-daemon (godbus), gRPC over a Unix
// socket and containerd's ttrpc. Run measures; cmd/ipcbench and bench/run
// are its command line; docs/PERFORMANCE.md reports the figures and
// docs/design/benchmarks.md what they measure.
//
// Every server runs in a child process, the program itself started again
// as `serve SYSTEM` (ServeMain) with GOMAXPROCS in its environment and a
// control socket on descriptor 3, over which the runner asks for memory and
// allocation counters and CPU profiles. The client is the runner.
//
// What is measured, under each GOMAXPROCS setting:
//
//   - Latency: a send-with-reply of the ping (ping.go: a method name, a
//     sequence number and a 60-byte payload) on one connection, one call
//     after another: p50, p99 and mean. All servers run at once and the
//     systems take turns (Config.Rounds), so that a change in the machine's
//     load falls on every system alike. The allocations and CPU time of both
//     processes are counted over the same calls.
//   - Throughput: Config.Concurrency requesters (8) sharing one connection,
//     calls per second. raw-unix cannot match replies to requests on a
//     shared socket, so it reports null there and gives, separately, the
//     figure with one connection per requester.
//   - Bulk (goxpc and raw-unix): 16 MiB to the server, which reads every
//     byte, per call; see bulk.go for the variants.
//   - Idle memory (goxpc): RSS and Go heap of client and server processes
//     before and after opening Config.IdleConns connections (idle.go).
package ipc
