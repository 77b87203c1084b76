// Package codesign gives Linux executables a code signature built on an
// existing format: a minisign signature of the file, kept beside it
// (FILE.minisig) or in an extended attribute, whose signed trusted comment
// carries the signer's identifier and team. Signatures are trusted when
// made by a key in the trust directory (TrustDir).
//
// The connection layer (xpc.Requirement's identifier and team clauses)
// verifies a peer's executable through a Verifier, which caches each
// answer by the file's identity, so a connection does not hash a large
// binary again.
package codesign
