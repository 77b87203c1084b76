package xpc

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Attachment is an out-of-band object: *FD, *SharedMemory or *Endpoint. In a
// body it is a bare type tag; the file descriptor it stands for travels beside
// the body (SCM_RIGHTS on a connection), in the order the tags appear.
//
// Ownership: an Attachment owns its descriptor. Sending one does not close
// it; the receiver gets its own duplicate, owned by the decoded object, which
// the receiver must Close (CloseAttachments closes every one in a value).
type Attachment interface {
	Object
	// File returns the descriptor the object stands for, still owned by it.
	File() *os.File
	// Close releases the descriptor (and any mapping). It is safe to call
	// more than once.
	Close() error
}

func isNilAttachment(a Attachment) bool {
	switch v := a.(type) {
	case *FD:
		return v == nil || v.f == nil
	case *SharedMemory:
		return v == nil || v.f == nil
	case *Endpoint:
		return v == nil || v.f == nil
	}
	return true
}

// FD is an XPC file descriptor object.
type FD struct{ f *os.File }

// NewFD returns an FD object that takes ownership of f.
func NewFD(f *os.File) *FD { return &FD{f: f} }

// DupFD returns an FD object holding a close-on-exec duplicate of fd; the
// caller keeps fd.
func DupFD(fd int) (*FD, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("xpc: dup fd %d: %w", fd, err)
	}
	return &FD{f: os.NewFile(uintptr(nfd), "xpc-fd")}, nil
}

// Type reports TypeFD.
func (*FD) Type() Type { return TypeFD }
func (*FD) isObject()  {}

// File returns the descriptor, still owned by the FD.
func (d *FD) File() *os.File { return d.f }

// Close closes the descriptor.
func (d *FD) Close() error { return closeFile(d.f) }

// setFile gives a decoded FD the descriptor that arrived for it.
func (d *FD) setFile(f *os.File) { d.f = f }

// Endpoint is an XPC endpoint: a reference to a listener that the holder can
// connect to. It stands for one descriptor; connections give it meaning.
type Endpoint struct{ f *os.File }

// NewEndpoint returns an Endpoint that takes ownership of f.
func NewEndpoint(f *os.File) *Endpoint { return &Endpoint{f: f} }

// Type reports TypeEndpoint.
func (*Endpoint) Type() Type { return TypeEndpoint }
func (*Endpoint) isObject()  {}

// File returns the descriptor, still owned by the Endpoint.
func (e *Endpoint) File() *os.File { return e.f }

// Close closes the descriptor.
func (e *Endpoint) Close() error { return closeFile(e.f) }

// setFile gives a decoded Endpoint the descriptor that arrived for it.
func (e *Endpoint) setFile(f *os.File) { e.f = f }

func closeFile(f *os.File) error {
	if f == nil {
		return nil
	}
	if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// SharedMemory is an XPC shared-memory object: a memfd the sender and
// receiver both map, so a large buffer crosses without being copied through
// the socket.
type SharedMemory struct {
	f    *os.File
	size int

	mu     sync.Mutex
	mapped []byte
}

// NewSharedMemory creates a memfd of size bytes (MFD_CLOEXEC, sealable) and
// returns it as a shared-memory object.
func NewSharedMemory(name string, size int) (*SharedMemory, error) {
	if size < 0 {
		return nil, fmt.Errorf("xpc: shared memory size %d: %w", size, ErrBadValue)
	}
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("xpc: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("xpc: size memfd to %d: %w", size, err)
	}
	return &SharedMemory{f: os.NewFile(uintptr(fd), name), size: size}, nil
}

// Type reports TypeShmem.
func (*SharedMemory) Type() Type { return TypeShmem }
func (*SharedMemory) isObject()  {}

// File returns the memfd, still owned by the object.
func (s *SharedMemory) File() *os.File { return s.f }

// Size returns the region's size in bytes.
func (s *SharedMemory) Size() int { return s.size }

// receivedSharedMemory returns a decoded SharedMemory of size bytes,
// which gets its descriptor (setFile) once the whole body has decoded.
func receivedSharedMemory(size int) *SharedMemory { return &SharedMemory{size: size} }

// setFile gives a decoded SharedMemory the descriptor that arrived for it.
func (s *SharedMemory) setFile(f *os.File) { s.f = f }

// Bytes maps the region (once) and returns it. It is mapped read-write if
// the memfd allows writes, read-only if it is sealed against them.
func (s *SharedMemory) Bytes() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mapped != nil || s.size == 0 {
		return s.mapped, nil
	}
	prot := unix.PROT_READ | unix.PROT_WRITE
	if seals, err := unix.FcntlInt(s.f.Fd(), unix.F_GET_SEALS, 0); err == nil && seals&unix.F_SEAL_WRITE != 0 {
		prot = unix.PROT_READ
	}
	b, err := unix.Mmap(int(s.f.Fd()), 0, s.size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("xpc: map shared memory: %w", err)
	}
	s.mapped = b
	return b, nil
}

// Seal makes the region immutable: no writes, no resizing, no further seals.
// A receiver can check Sealed and rely on the contents not changing. Seal
// fails while the region is mapped writable, so seal before calling Bytes,
// or write through the file.
func (s *SharedMemory) Seal() error {
	const seals = unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(s.f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("xpc: seal shared memory: %w", err)
	}
	return nil
}

// Sealed reports whether the region is sealed against writes and resizing.
func (s *SharedMemory) Sealed() bool {
	seals, err := unix.FcntlInt(s.f.Fd(), unix.F_GET_SEALS, 0)
	const need = unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW
	return err == nil && seals&need == need
}

// Close unmaps the region and closes the memfd.
func (s *SharedMemory) Close() error {
	s.mu.Lock()
	var err error
	if s.mapped != nil {
		err = unix.Munmap(s.mapped)
		s.mapped = nil
	}
	s.mu.Unlock()
	return errors.Join(err, closeFile(s.f))
}

// CloseAttachments closes every out-of-band object inside obj.
func CloseAttachments(obj Object) error {
	var errs []error
	walkAttachments(obj, func(a Attachment) { errs = append(errs, a.Close()) })
	return errors.Join(errs...)
}

func walkAttachments(obj Object, fn func(Attachment)) {
	switch v := obj.(type) {
	case Attachment:
		fn(v)
	case Array:
		for _, e := range v {
			walkAttachments(e, fn)
		}
	case *Dictionary:
		for _, e := range v.ents {
			walkAttachments(e.val, fn)
		}
	case *ErrorObject:
		for _, e := range v.ents {
			walkAttachments(e.val, fn)
		}
	}
}
