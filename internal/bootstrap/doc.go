// Package bootstrap is what the xpc library, xpcd and xpcctl share about
// xpcd's protocol (docs/XPCD.md), and nothing more, so that a client links
// none of the daemon:
//
//   - paths.go: where one xpcd instance keeps its sockets and directories,
//     and the environment variables that select them or reach a service
//     xpcd launched;
//   - protocol.go: every word that crosses the bootstrap connection and the
//     check-in channel: operations (the "op" key), keys, the kind and
//     reasons of error replies, and the security rules a refusal names.
package bootstrap
