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
//
// # Format
//
// A signature is a minisign signature file, prehashed (BLAKE2b-512 of the
// file's contents, signed with Ed25519: what minisign makes by default;
// legacy signatures of the whole file are refused). Its trusted comment,
// which the signature covers, is exactly
//
//	identifier=ID[ team=TEAM][ timestamp=UNIXSECONDS]
//
// in that order, separated by single spaces; ID and TEAM are printable
// ASCII without spaces and without = " ' ( ) \, at most MaxIdentifierLen
// and MaxTeamLen bytes. A comment of any other form (minisign's own
// "timestamp:..." one included) is a bad signature. The untrusted comment
// is ignored. The minisign tool can make such signatures too:
//
//	minisign -S -s KEY -m FILE -x FILE.minisig -t "identifier=org.example.app team=ABCDE12345"
//
// # Where signatures are kept
//
// In the extended attribute XattrName (user.xpc.minisig) of the file, or
// in the file FILE.minisig beside it. When both exist the extended
// attribute wins, and the file beside is not read: a bad attribute is a
// bad signature even if the file beside is good. Both are read as hostile
// input: at most MaxSignatureSize bytes, and the file beside only if it
// is a regular file (not a symbolic link, FIFO or device, which are bad
// signatures; it is never opened for reading before that is known).
//
// # Trust
//
// Every *.pub file in the trust directory is a trusted minisign public
// key. A file that is not a regular file, is larger than 4 KiB, does not
// parse, or could be changed by someone other than root and the process's
// own user (another owner, or writable by group or others) is skipped and
// reported (Verifier.TrustedKeys, KeyError); a directory that others
// could change trusts nothing. A missing directory trusts nothing.
//
// # Cache
//
// A Verifier keeps at most CacheSize answers, least recently used
// forgotten first. Verify's answers are keyed by what fstat says of the
// file (device, inode, size, mtime, ctime), the same of the signature file
// beside it, and the trust directory's keys; Digest's by the file alone.
// Each Verify stats the trust directory and each key file once, and reads
// them again only when one changed, so a key added, removed or rewritten
// is seen by the next Verify. Any change to a file's contents or extended
// attributes changes its ctime, which no user can set back, so a modified
// binary is never answered from the cache. An answer about a file whose
// ctime is less than a second old is given but not kept (a second change
// within one tick of the kernel's clock would not change its ctime); one
// about a file with fs-verity is kept at once, as such a file cannot
// change, and its measured digest is part of the key.
//
// Default is the process's Verifier, shared by the whole process like
// http.DefaultTransport, so that the process hashes an executable once.
package codesign
