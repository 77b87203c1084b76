// Package xpc is XPC for Linux: the interprocess-communication model macOS
// is built on, as native Go. Messages are dictionaries of typed values,
// serialized in Apple's XPC format (version 5) byte for byte; connections
// run over AF_UNIX sockets and carry file descriptors, shared memory and
// endpoints beside the bytes, with the kernel's word on who the peer is.
//
// # Objects
//
// Every XPC value is an Object. The set is closed:
//
//	XPC type     Go type          notes
//	null         Null
//	bool         Bool
//	int64        Int64
//	uint64       Uint64
//	double       Double           compared by bit pattern in Equal
//	date         Date             int64 nanoseconds since 1970 UTC; DateOf, Date.Time
//	data         Data             decoded Data is a copy, never aliases input
//	string       String           valid UTF-8 without NUL bytes
//	uuid         UUID             [16]byte; String gives 8-4-4-4-12
//	array        Array            []Object
//	dictionary   *Dictionary      unique keys, insertion (or wire) order kept
//	error        *ErrorObject     a dictionary of details (XPCErrorDescription)
//	fd           *FD              out of band
//	shmem        *SharedMemory    out of band; memfd, optionally sealed
//	endpoint     *Endpoint        out of band; lets the holder connect to a Listener
//
// Build messages with Dict and the typed constructors, read them with the
// typed accessors (Dictionary.Int64 and friends return ErrKeyNotFound or a
// *TypeMismatchError) or with Get and a type assertion:
//
//	msg := xpc.Dict("op", "resize", "width", 640, "height", 480)
//	w, err := msg.Int64("width")
//	name, ok := msg.Get("name").(xpc.String)
//
// Format prints a value readably, one line per entry, like
// xpc_copy_description; Equal compares deeply (dictionaries in any order).
//
// # Go values
//
// Marshal and Unmarshal convert Go values, usually structs tagged
// `xpc:"name,omitempty"`, straight to and from serialized bodies, the way
// encoding/json does for JSON; ValueOf and ObjectInto do the same to and
// from Objects, Encoder.EncodeValue and Decoder.DecodeValue with
// descriptors. The conversion rules:
//
//	Go type                          XPC type      notes
//	-------------------------------  ------------  ---------------------------------------------
//	bool                             bool
//	int, int8 ... int64              int64         decode: uint64 accepted if it fits; range checked
//	uint, uint8 ... uint64, uintptr  uint64        decode: int64 accepted if >= 0; range checked
//	float32, float64                 double        decode: int64/uint64 accepted; float32 range checked
//	string                           string        must be UTF-8 without NUL bytes
//	[]byte                           data          nil encodes as empty data; decode copies
//	[N]byte (not xpc.UUID)           data          decode needs exactly N bytes
//	xpc.UUID                         uuid          decode: a string in 8-4-4-4-12 form accepted
//	time.Time                        date          ns since 1970 UTC, saturating (DateOf); decodes in UTC;
//	                                               the minimum date decodes as the zero time.Time
//	time.Duration                    int64         nanoseconds (it is an int64)
//	struct                           dictionary    one key per field, in field order (see below)
//	map[string]T                     dictionary    keys sorted, so output is deterministic
//	[]T, [N]T                        array         nil slice encodes as an empty array
//	*T                               as T          nil: omitted with omitempty, else null
//	interface (any)                  dynamic       nil: null; decode to natural values (below)
//	xpc.Object, *xpc.Dictionary, ... as is         the object itself, any concrete Object type
//	*xpc.FD, *SharedMemory, *Endpoint fd, shmem,   out of band: need an Encoder / a Decoder
//	                                 endpoint      with fds; Marshal and Unmarshal refuse them
//	Marshaler / Unmarshaler          any           MarshalXPC / UnmarshalXPC decide
//	encoding.TextMarshaler           string        when the type is not handled above
//	chan, func, complex, unsafe ptr  -             ErrUnsupportedType
//	map with non-string keys         -             ErrUnsupportedType
//
// Decoding into an empty interface gives natural Go values: null -> nil,
// bool -> bool, int64 -> int64, uint64 -> uint64, double -> float64,
// date -> time.Time, data -> []byte, string -> string, uuid -> xpc.UUID,
// array -> []any, dictionary -> map[string]any, and error, fd, shmem and
// endpoint objects as themselves (*xpc.ErrorObject, *xpc.FD, ...). A non-empty
// interface field (xpc.Object, xpc.Attachment) receives the decoded object
// if it implements the interface. An interface already holding a non-nil
// pointer is decoded into the pointed-to value, as encoding/json does.
//
// Null decodes to the zero value of any Go type (nil for pointers, maps,
// slices and interfaces), except that an Unmarshaler and a non-empty
// interface receive Null{} itself.
//
// Struct fields and tags: a field's key is its name as written in Go, or
// the name given in an `xpc:"name"` tag. `xpc:"-"` skips the field;
// unexported fields are skipped. Options after the name: "omitempty" leaves
// out false, 0, "", nil pointers and interfaces, and empty slices, maps,
// arrays and strings; "omitzero" leaves out zero values (using an IsZero()
// bool method if the type has one, so it omits a zero time.Time);
// "required" makes strict decoding (below) refuse a dictionary without the
// key, and changes nothing else. Embedded structs (and pointers to them)
// without a tag name have their fields flattened into the outer dictionary,
// as encoding/json does: on a name clash the shallower field wins, then a
// tagged one; fields that still tie are all left out. A nil embedded
// pointer contributes no keys.
//
// Keys are case-sensitive, unlike encoding/json's: a key that differs from
// a field's only in case ("name" for Name) is not that field's, and leaves
// it alone. Decoding into a struct sets the fields whose keys appear and
// leaves the others alone; keys with no field are checked and skipped, so
// that an older peer reads a newer peer's messages (fields added later are
// ignored; fields removed stay zero). Maps are added to (made if nil);
// slices are replaced, reusing their storage; arrays receive as many
// elements as fit and the rest are zeroed. On error the target may be
// partly filled.
//
// Strict decoding (ObjectIntoStrict, Decoder.Strict, and Message.Decode and
// Connection.Invoke on a connection made WithStrictDecoding) refuses instead
// what the lax rules let pass: a key with no field is ErrUnknownKey (naming
// the field it differs from only in case, if one does), and a missing key
// of a field tagged required is ErrRequiredKey, both the cause of a
// *FieldError naming the key's path. The rule holds in nested and embedded
// structs and in the structs of maps, slices and arrays. Use it where both
// ends are built together; it gives up the versioning rule above.
//
// Errors: a problem with a part of the Go value (an unsupported type, a
// type mismatch, a number out of range, an invalid string, nesting too
// deep, a MarshalXPC/UnmarshalXPC error, an unknown or missing key when
// strict) is a *FieldError naming the path to it ("config.ports[2]": XPC
// keys and indexes). Its cause is testable with errors.Is
// (ErrUnsupportedType, ErrOverflow, ErrBadString, ErrTooDeep,
// ErrUnknownKey, ErrRequiredKey) or errors.As (*TypeMismatchError).
// Malformed input is a *DecodeError with its offset, as from Decode. Errors
// about the body as a whole (too large, out-of-band objects where none can
// go) are *EncodeError, as from Encode.
//
// Typed messages: Connection.SendValue and Connection.Invoke send a Go
// value (a struct, a map with string keys, or a *Dictionary) as a message,
// and Invoke decodes the reply into another; a handler reads a message with
// Message.Decode and answers with Message.ReplyValue:
//
//	var f Forecast
//	err := conn.Invoke(ctx, Request{City: "Oslo"}, &f)
//
//	func (s *service) HandleMessage(ctx context.Context, m *xpc.Message) {
//		var req Request
//		if err := m.Decode(&req); err != nil {
//			m.ReplyError(ctx, xpc.ErrorObjectOf(err))
//			return
//		}
//		m.ReplyValue(ctx, s.forecast(req))
//	}
//
// A value that is not a dictionary is a *FieldError (a *TypeMismatchError)
// and nothing is sent. Descriptors a decoded message or reply brought
// belong, once decoded, to the value when placed in it (an *FD field), and
// are closed otherwise (under keys with no field, or all of them when the
// value does not decode). Errors cross with their domain and code:
// ErrorObjectOf turns an error into the error object a reply carries, and
// the *RemoteError the caller gets matches the service's CodedError with
// errors.Is and restores it with errors.As (DomainError makes sentinels).
//
// # Wire format
//
// A body is a u32 magic (MagicLocal "@XPC", or MagicRemote for RemoteXPC),
// u32 version 5 and one object; docs/PROTOCOL.md gives every layout. Encoder
// writes into a buffer it reuses, without allocating; Decoder treats every
// byte as hostile: lengths are checked against the bytes that remain before
// anything is allocated, nesting and size are bounded (Limits), and every
// failure is a *DecodeError naming its kind (ErrTruncated, ErrBadLength, ...)
// and byte offset. Strings that are not valid UTF-8 are rejected, not
// replaced. DecodeWrapped and EncodeWrapped handle RemoteXPC's 24-byte
// message wrapper, whose body always has MagicRemote: both refuse a local
// body inside it. Doubles keep their bits both ways; a NaN read from text
// is C's NAN (0x7FF8000000000000). Tagged JSON (MarshalTaggedJSON, UnmarshalTaggedJSON) and
// property-list conversions (FromPlist, ToPlist) give human-readable forms.
//
// # Descriptors and ownership
//
// Out-of-band objects stand for file descriptors, which travel beside the
// body (SCM_RIGHTS) in the order their tags appear. Every descriptor has one
// owner:
//
//   - NewFD, NewEndpoint and NewSharedMemory objects own their descriptor;
//     Close releases it.
//   - Sending an object does not close it: the connection sends a duplicate.
//   - A received message owns the descriptors it brought; the handler must
//     close the ones it keeps no use for (CloseAttachments closes every one
//     in a value). A message dropped because its connection ended is closed
//     for you.
//   - Decoder.Decode takes ownership of the descriptors it is given only on
//     success; on error the caller still owns and must close them all.
//
// # Connections
//
// A Connection is created inactive, given a Handler, then activated; Cancel
// is final. NewEndpointConnection connects to a Listener through an
// Endpoint; NewServiceConnection connects to a named service through xpcd,
// the same Connection made by another constructor. A lookup does not wait
// for xpcd: the first message goes out right behind it, and a name xpcd
// cannot give ends the connection when its answer arrives (the send's
// reply fails, the handler hears it). Each lookup connects to xpcd on its
// own, unless the connection is made with WithBootstrap: a Bootstrap keeps
// one connection to xpcd for all the lookups made through it, as an
// http.Transport keeps connections.
//
//	l, _ := xpc.NewListener()
//	l.SetHandler(func(peer *xpc.Connection) {
//		peer.SetHandler(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
//			m.Reply(ctx, xpc.Dict("echo", m.Body.Get("text")))
//		}))
//		peer.Activate()
//	})
//	l.Activate()
//	ep, _ := l.Endpoint() // send it in a message, or hand it to a child process
//
//	c, _ := xpc.NewEndpointConnection(ep)
//	c.Activate()
//	reply, err := c.SendWithReply(ctx, xpc.Dict("text", "hi"))
//
// The rules users rely on:
//
//   - Order: messages on one connection reach its handler in the order they
//     were sent, one at a time, never concurrently.
//   - Replies are independent of the handler: a handler may itself send with
//     reply, on the same connection or another, without deadlocking, and a
//     slow handler never delays the delivery of replies.
//   - Send is one-way. SendWithReply waits, bounded by its context. Go
//     returns a Call at once. A message wanting a reply gets one: Reply,
//     ReplyError, or, if the handler returns without either and without
//     calling Defer, an automatic "no reply" that fails the call with
//     ErrNoReply.
//   - Transactions: a message wanting a reply is an open transaction from
//     its arrival until its reply is sent. Transactions.Begin opens one for
//     other work. The count is what a service's idle exit looks at.
//   - Suspend and Resume nest; while suspended, nothing is delivered and the
//     peer is held back by flow control.
//   - A panic in a handler is not recovered, unlike one in a net/http
//     handler: it ends the process, as an uncaught exception ends an XPC
//     service on macOS. Its peers see the connection go (ErrPeerGone, or
//     ErrInterrupted for a named service, which xpcd launches again on the
//     next request). A handler that can panic on a peer's input should
//     recover itself and answer with ReplyError.
//
// # Sessions
//
// A Session (NewSession, NewEndpointSession) is Swift's XPCSession: a
// client of one instance of its peer that never reconnects silently. When
// that instance goes (it exits, crashes, is idled out or upgraded), or the
// listener rejects the session, or its owner cancels it, the session is
// over: pending replies and every later send fail with one *SessionError,
// whose Reason says why and CanRetry whether a new session may well work.
// A listener decides on each incoming session with SetSessionHandler:
// SessionRequest.Accept with the handler of its messages, or
// SessionRequest.Reject with a reason the client receives (matching
// ErrSessionRejected).
//
//	l.SetSessionHandler(func(r *xpc.SessionRequest) {
//		if r.Peer().UID != 0 {
//			r.Reject("root only")
//			return
//		}
//		r.Accept(xpc.HandlerFunc(serve))
//	})
//
//	s, err := xpc.NewSession(ctx, "org.example.weather", nil)
//	...
//	reply, err := s.SendWithReply(ctx, req)
//	var se *xpc.SessionError
//	if errors.As(err, &se) && se.CanRetry {
//		// make a new session
//	}
//
// # Options and contexts
//
// Constructors take options (WithMaxMessageSize, WithDomain, ...). Each
// option applies to the constructors its documentation lists; given to any
// other, the constructor returns an *OptionError, matched by
// ErrOptionNotApplicable, rather than ignore it. A bad value (WithMaxFDs(-1))
// and options that conflict (WithBootstrap beside WithBootstrapSocket) are
// errors too. Given twice, an option's last value counts, except
// WithPeerRequirement's: a second requirement is an *OptionError matching
// ErrOptionRepeated, never a silent replacement of the first.
//
// Every call that may wait takes a context. A context that has already
// ended sends nothing: Send, SendWithReply, Go, Reply and ReplyError return
// its error. A caller that must not wait (a server's loop answering many
// peers) uses TrySend, TryReply or TryReplyError, which send only what
// goes out at once and otherwise return ErrWouldBlock, sending nothing.
//
// # Goroutines
//
// A connection has one goroutine of its own, which waits for the peer's
// frames. When it reads a message for a handler that is idle, it runs the
// handler itself, so a request reaches its handler, and the reply leaves,
// without a switch between goroutines; when the peer goes, it delivers
// that event too. A goroutine waiting in SendWithReply
// or Call.Wait while nothing else reads the connection reads its reply
// itself, for the same reason. Whatever needs the peer's frames while a
// handler runs (a reply, flow-control credit) is read by a second goroutine
// started for the purpose. What nothing waits for is read when the handler
// returns: a peer that exits while a handler runs is noticed then, not
// while it runs, so a handler that works for long should watch for its own
// reasons to stop.
//
// # Errors
//
// Every error a function of this package returns begins "xpc: ", once, and
// matches, with errors.Is, one or more kinds: sentinels (ErrTruncated,
// ErrInterrupted, ...) whose text is the kind alone. The one exception is
// a context's error, which a call whose context ends returns as it is.
// Typed errors say more (*DecodeError: the offset; *EncodeError and
// *FieldError: the path in the value; *ConnError: the reason;
// *RemoteError: the peer's error object). CHANGES.md lists the names that
// changed.
//
// Connection errors are *ConnError values tested with errors.Is, each
// carrying a *Reason (its Code a stable word, its fields the rule, domain,
// peer identity or exit status it names); Connection.Reason returns the
// last one:
//
//   - ErrInterrupted: the named service went away (the reason says why:
//     it exited or crashed, idle exit, upgrade, an administrator, memory
//     pressure; as the service announced it, or else as xpcd tells the
//     connection within 250 ms). Pending replies fail; the connection
//     stays usable and the next send reaches a new instance. Paired with
//     ErrLaunchFailed when xpcd cannot start the service now and tells the
//     waiting clients at once rather than let them wait out their
//     deadlines: ReasonLaunchFailed (its program is missing or not
//     executable, ...), ReasonExited or ReasonSignaled (it ended before
//     checking the name in), ReasonThrottled (after such an end, xpcd
//     waits before the next launch; the description says until when),
//     ReasonDisabled or ReasonNotFound (its job was disabled or unloaded
//     while the client waited). Test errors.Is(err, ErrLaunchFailed) and
//     read the reason for the detail.
//   - ErrInvalid: final. Always paired with a reason's kind: ErrCanceled
//     (your Cancel), ErrPeerGone (the peer vanished), ErrProtocol (it sent
//     malformed frames), ErrPeerOverLimit (it went over a byte limit),
//     ErrPeerRequirement (it failed the connection's requirement, or you
//     failed the name's), and for lookups ErrServiceNotFound (no such
//     name anywhere you may look), ErrOtherDomain (it is in another
//     domain), ErrDenied (a rule refused; the reason names it),
//     ErrNotApproved, ErrNotInBundle (an application bundle's XPC
//     service, and you were not started from that bundle).
//   - ErrTerminationImminent: the service has announced that it will exit
//     (the reason says why, if xpcd told it).
//
// When a peer goes, every pending reply fails at once with the connection's
// error and the handler receives it as an event; the last event is always
// the ErrInvalid one. With nothing listening on the bootstrap socket, a
// send to a named service fails with ErrNoBootstrap ("no xpcd is
// running", naming the socket and how to start xpcd), not a *ConnError;
// the connection stays usable. Per-message failures (ErrTooLarge,
// ErrTooManyFDs, ErrNoReply, *RemoteError, a context's error) leave the
// connection as it was.
//
// # Flow control and limits
//
// Each side may have at most 256 messages and requests unread by the other
// side's handler, and at most 64 MiB of their bodies
// (DefaultMaxQueuedBytes; the receiver's WithMaxQueuedBytes, which it
// tells the sender); past either, Send and SendWithReply wait (bounded by
// their context) until the peer's dispatcher catches up. A peer that
// ignores the message window is cut off with ErrProtocol, one that ignores
// the byte limit with ErrPeerOverLimit. Replies are never held back, but
// those over 64 KiB, whose memfds stay in memory until the requester
// reads them, are counted until the requester says it has: a peer that
// leaves more than 64 MiB of them unread (DefaultMaxUnreadBytes,
// WithMaxUnreadBytes) is cut off with ErrPeerOverLimit, and the Reply that
// would have gone over returns that error rather than wait. So a peer that
// stops reading never makes the other side's memory grow.
// Messages may be up to 64 MiB (WithMaxMessageSize) and carry up to 252
// descriptors (WithMaxFDs); both are checked when sending and receiving.
// WithMaxReceiveSize lowers the limit on what is received alone, for a
// server whose requests are small but whose replies may not be.
// Bodies over 64 KiB travel in a sealed memfd rather than through the
// socket; SharedMemory moves large buffers without copying them at all.
//
// # Peer identity
//
// Peer is what the kernel recorded when the connection was made
// (SO_PEERCRED): pid, uid, gid, plus a pidfd (SO_PEERPIDFD, or pidfd_open
// on kernels before 6.5) so that a recycled pid can never impersonate the
// peer, and the executable path. A peer never describes itself.
//
// # Peer requirements
//
// WithPeerRequirement makes a connection, or each peer of a listener,
// require a Requirement ("uid 0", "exe /usr/libexec/helper", "team
// ABCDE12345 and identifier org.example.app"; docs/SECURITY.md has the
// language) of the process at the other end. The peer is checked when it
// becomes known: at connect for a connection made through an endpoint, a
// path or a socket; at the hello of a named service, before any reply; as
// each client connects to a listener, before SetAdmission's check and the
// handler. Then it is checked again before each message, request and reply
// it sends is handled, once that frame has been read, so that a peer that
// executes another program after connecting fails from its next frame on.
// While the peer runs the executable its last check examined, that costs
// one fstatat of /proc/PID/exe through the /proc directory kept for the
// peer, measured at about the cost of the floor of any such check (a
// readlink of it, 3 µs on a small VM; BenchmarkPeerRequirement, and
// docs/SECURITY.md), and one atomic load for a requirement met without
// looking at the executable (uid, group, unit); a connection without a
// requirement pays one comparison per frame. A peer that fails ends the
// connection, invalid: pending replies fail, the frame is not delivered,
// and the handler's last event says ErrInvalid and ErrPeerRequirement, its
// Reason naming the clause (Rule) and the identity checked (Peer). A
// listener sends its client that reason in a refused frame, so that the
// client's connection fails the same way.
package xpc
