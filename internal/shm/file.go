package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/ring"
)

// Errors returned by this package besides ring's sentinels: [Create]
// wraps [ring.ErrNoSpace] when the file system holding the object (a tmpfs
// such as /dev/shm) cannot hold it; [Open] and [File.CheckSafe] wrap
// [ring.ErrUnsafeFile] for an object that is not a regular file, is a
// symbolic link, belongs to another user or is writable by others.
// Callers wrap them with the ring name.
var (
	// ErrLocked is returned by [File.LockWrite] when another open file
	// description holds the write lock.
	ErrLocked = errors.New("locked by another writer")
	// ErrFault is returned by [Guard] when the guarded function touched a
	// page that is no longer backed (the object was truncated).
	ErrFault = errors.New("memory fault in shared mapping")
)

// File is an open shared-memory object.
type File struct {
	f *os.File
}

// ErrNoTmpfile is returned by [CreateUnnamed] where a nameless file
// cannot be made and later named: the file system or kernel lacks
// O_TMPFILE, or /proc/self/fd is not there for linkat. Callers fall back
// to a named temporary file ([CreateExcl]).
var ErrNoTmpfile = errors.New("O_TMPFILE not supported here")

// Create creates path exclusively with the given permission bits, reserves
// size bytes with fallocate and returns it open read-write. On ENOSPC the
// half-made file is removed and the error wraps [ring.ErrNoSpace].
func Create(path string, size int64, perm fs.FileMode) (*File, error) {
	f, err := CreateExcl(path, perm)
	if err != nil {
		return nil, err
	}
	if err := f.Allocate(size); err != nil {
		f.Close()
		unix.Unlink(path)
		return nil, err
	}
	return f, nil
}

// CreateExcl creates path exclusively (O_CREAT|O_EXCL|O_NOFOLLOW), empty,
// with the given permission bits (set with fchmod, so the umask cannot
// clear group bits the caller asked for). It fails with fs.ErrExist if
// anything is there.
func CreateExcl(path string, perm fs.FileMode) (*File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: path, Err: err}
	}
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		unix.Close(fd)
		unix.Unlink(path)
		return nil, &os.PathError{Op: "fchmod", Path: path, Err: err}
	}
	return &File{f: os.NewFile(uintptr(fd), path)}, nil
}

// CreateUnnamed creates a regular file with no name in directory dir
// (O_TMPFILE), with the given permission bits (fchmod). Nobody can open
// it until [File.LinkTo] names it, so its creator can lock and fill it
// first. It fails with an error wrapping [ErrNoTmpfile] where that is not
// possible.
func CreateUnnamed(dir string, perm fs.FileMode) (*File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		switch err {
		case unix.EOPNOTSUPP, unix.EISDIR, unix.EINVAL:
			return nil, fmt.Errorf("%w: %s (%v)", ErrNoTmpfile, dir, err)
		}
		return nil, &os.PathError{Op: "create a file in", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if unix.Stat(procFD(fd), &st) != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s is not there to name the file", ErrNoTmpfile, procFD(fd))
	}
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fchmod", Path: dir, Err: err}
	}
	return &File{f: os.NewFile(uintptr(fd), dir+"/(unnamed)")}, nil
}

func procFD(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// LinkTo names f, a file from [CreateUnnamed], path: linkat of
// /proc/self/fd/N with AT_SYMLINK_FOLLOW (which needs no privilege, unlike
// AT_EMPTY_PATH). It fails with fs.ErrExist if path exists: it never
// replaces anything.
func (f *File) LinkTo(path string) error {
	for {
		err := unix.Linkat(unix.AT_FDCWD, procFD(f.Fd()), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "link", Old: f.Name(), New: path, Err: err}
		}
		return nil
	}
}

// Allocate reserves size bytes for f with fallocate (ftruncate on a file
// system without it), so that a full tmpfs fails here and not later with
// SIGBUS. ENOSPC gives an error wrapping [ring.ErrNoSpace].
func (f *File) Allocate(size int64) error {
	if err := fallocate(f.Fd(), size); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("%w: %d bytes needed", ring.ErrNoSpace, size)
		}
		return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
	}
	return nil
}

func fallocate(fd int, size int64) error {
	for {
		err := unix.Fallocate(fd, 0, 0, size)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EOPNOTSUPP {
			// Not tmpfs (a test directory on another file system): the
			// size check at map time still applies.
			return unix.Ftruncate(fd, size)
		}
		return err
	}
}

// Names reports whether path names f's file: lstat(path) succeeds with
// fstat(f)'s device and inode, and the file still has a link. A writer
// checks it after taking the lock and after renaming its file into place
// (D1): a concurrent writer may have replaced the file in between.
func (f *File) Names(path string) (bool, error) {
	in, err := f.Stat()
	if err != nil {
		return false, err
	}
	at, err := StatPath(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return in.Nlink > 0 && at.Dev == in.Dev && at.Inode == in.Inode, nil
}

// Open opens an existing object without following a symbolic link in the
// last path element, read-only or read-write, and refuses anything but a
// regular file before it can block or be read.
//
// The open itself cannot block: it uses O_NONBLOCK (a FIFO planted under
// the name would otherwise block open(2) until someone opens its other
// end, forever) and O_NOCTTY, then fstat checks the type, and only then is
// O_NONBLOCK cleared. A FIFO, socket, device or directory gives an error
// wrapping [ring.ErrUnsafeFile] ("not a regular file") at once; so does a
// symbolic link. lstat comes first, so that an object that is visibly not
// a regular file is not even opened (opening a device can have effects).
func Open(path string, writable bool) (*File, error) {
	flags := unix.O_RDONLY
	if writable {
		flags = unix.O_RDWR
	}
	if in, err := StatPath(path); err == nil {
		if err := regular(path, in.kind); err != nil {
			return nil, err
		}
	}
	return openRegular(path, flags)
}

// openRegular is Open after the lstat: the open that cannot block, the
// fstat, clearing O_NONBLOCK. Something else may be under the name by now.
func openRegular(path string, flags int) (*File, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		switch err {
		case unix.ELOOP:
			return nil, fmt.Errorf("%w: %s is a symbolic link", ring.ErrUnsafeFile, path)
		case unix.ENXIO, unix.EISDIR, unix.ENODEV:
			// A socket (ENXIO), a directory opened for writing, a FIFO
			// opened for writing with no reader, a device with no driver.
			return nil, fmt.Errorf("%w: %s is not a regular file (%v)", ring.ErrUnsafeFile, path, err)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if err := regular(path, st.Mode&unix.S_IFMT); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// A regular file: O_NONBLOCK means nothing for it, but clear it anyway
	// (D1 step 1), so that the descriptor behaves like any other.
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	return &File{f: os.NewFile(uintptr(fd), path)}, nil
}

// regular returns nil for a regular file's type bits (S_IFMT of st_mode),
// else an error wrapping [ring.ErrUnsafeFile] naming what path is.
func regular(path string, kind uint32) error {
	what := ""
	switch kind {
	case unix.S_IFREG:
		return nil
	case unix.S_IFIFO:
		what = "a FIFO"
	case unix.S_IFSOCK:
		what = "a socket"
	case unix.S_IFCHR:
		what = "a character device"
	case unix.S_IFBLK:
		what = "a block device"
	case unix.S_IFDIR:
		what = "a directory"
	case unix.S_IFLNK:
		return fmt.Errorf("%w: %s is a symbolic link", ring.ErrUnsafeFile, path)
	default:
		what = fmt.Sprintf("of type %#o", kind)
	}
	return fmt.Errorf("%w: %s is not a regular file (%s)", ring.ErrUnsafeFile, path, what)
}

// Info is what fstat says about an open object.
type Info struct {
	Size    int64
	Inode   uint64
	Dev     uint64
	UID     uint32
	Mode    fs.FileMode
	Nlink   uint64
	ModTime time.Time
	kind    uint32 // S_IFMT bits of st_mode
}

// Stat returns fstat of f.
func (f *File) Stat() (Info, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.f.Fd()), &st); err != nil {
		return Info{}, &os.PathError{Op: "fstat", Path: f.f.Name(), Err: err}
	}
	return infoOf(&st), nil
}

func infoOf(st *unix.Stat_t) Info {
	mode := fs.FileMode(st.Mode & 0o777)
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		mode |= fs.ModeIrregular
	}
	return Info{Size: st.Size, Inode: st.Ino, Dev: uint64(st.Dev), UID: st.Uid, Mode: mode,
		Nlink: uint64(st.Nlink), ModTime: time.Unix(st.Mtim.Unix()), kind: st.Mode & unix.S_IFMT}
}

// StatPath is lstat of path: it does not follow a final symbolic link.
func StatPath(path string) (Info, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return Info{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return infoOf(&st), nil
}

// Trust says which objects [File.CheckSafe] accepts besides regular files
// owned by the effective user that only the owner may write.
type Trust struct {
	GroupWrite bool // accept group-writable objects (mode 0660)
	OtherOwner bool // accept objects owned by another user
	WorldWrite bool // accept world-writable (and so group-writable) objects: legacy objects of old senders, on request
}

// CheckSafe reports [ring.ErrUnsafeFile] unless f is a regular file that t
// accepts. A world-writable object is refused unless t.WorldWrite.
func (f *File) CheckSafe(t Trust) (Info, error) {
	in, err := f.Stat()
	if err != nil {
		return in, err
	}
	switch {
	case in.Mode&fs.ModeIrregular != 0:
		return in, fmt.Errorf("%w: %s is not a regular file", ring.ErrUnsafeFile, f.Name())
	case in.UID != uint32(os.Geteuid()) && !t.OtherOwner:
		return in, fmt.Errorf("%w: %s belongs to uid %d, not to you (uid %d)", ring.ErrUnsafeFile, f.Name(), in.UID, os.Geteuid())
	case in.Mode&0o002 != 0 && !t.WorldWrite:
		return in, fmt.Errorf("%w: %s is world-writable (mode %04o)", ring.ErrUnsafeFile, f.Name(), uint32(in.Mode.Perm()))
	case in.Mode&0o020 != 0 && !t.GroupWrite && !t.WorldWrite:
		return in, fmt.Errorf("%w: %s is group-writable (mode %04o)", ring.ErrUnsafeFile, f.Name(), uint32(in.Mode.Perm()))
	}
	return in, nil
}

// Name returns the path f was opened with.
func (f *File) Name() string { return f.f.Name() }

// Fd returns the descriptor; it stays owned by f.
func (f *File) Fd() int { return int(f.f.Fd()) }

// OSFile returns the *os.File behind f; it stays owned by f.
func (f *File) OSFile() *os.File { return f.f }

// Close closes the descriptor, releasing any OFD lock it holds. It is safe
// to call more than once.
func (f *File) Close() error {
	if f == nil || f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}

// Truncate sets the size of the object (used by tests and by legacy
// writers; framering never shrinks a live ring).
func (f *File) Truncate(size int64) error {
	if err := unix.Ftruncate(f.Fd(), size); err != nil {
		return &os.PathError{Op: "ftruncate", Path: f.Name(), Err: err}
	}
	return nil
}

// LockWrite takes an exclusive OFD write lock over the whole object without
// waiting. It fails with [ErrLocked] while another open file description
// holds it. The lock lives as long as the descriptor: a crashed writer's
// lock goes with its process.
func (f *File) LockWrite() error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	for {
		err := unix.FcntlFlock(uintptr(f.Fd()), unix.F_OFD_SETLK, &lk)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.EACCES:
			return ErrLocked
		default:
			return &os.PathError{Op: "lock", Path: f.Name(), Err: err}
		}
	}
}

// WriteLocked reports whether some open file description holds a write
// lock on the object. It takes no lock and works on a read-only descriptor.
// The answer is false for a lock held through f itself.
func (f *File) WriteLocked() (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(uintptr(f.Fd()), unix.F_OFD_GETLK, &lk); err != nil {
		return false, &os.PathError{Op: "getlk", Path: f.Name(), Err: err}
	}
	return lk.Type != unix.F_UNLCK, nil
}

// Rename moves oldpath to newpath atomically (same directory).
func Rename(oldpath, newpath string) error {
	return os.Rename(oldpath, newpath)
}

// ProcessAlive reports whether a process with this pid exists (kill 0).
// EPERM counts as alive: the process exists but belongs to someone else.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

// Link makes newpath a second name of oldpath; it fails with fs.ErrExist
// when newpath exists, which makes it an atomic "create if absent".
func Link(oldpath, newpath string) error {
	return os.Link(oldpath, newpath)
}
