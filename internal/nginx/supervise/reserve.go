package supervise

import (
	"errors"
	"os"
	"syscall"
)

// reserveSize is the space the supervisor keeps for nginx's own start.
// nginx writes its pid file (O_TRUNC, then a few bytes) every time it
// starts; on a full disk that write fails and nginx exits at once, so a
// restart with the disk still full would never serve. A file of this
// size, made while there is space and removed just before each start,
// leaves room for the pid file (one block) and some error-log lines.
const reserveSize = 1 << 20

// reserveFile is the reserve's path under nginx's prefix.
func reserveFile(prefix string) string { return prefix + "/logs/space-reserve" }

// releaseReserve removes the reserve so that the nginx about to start can
// write its pid file even on a full disk. It is best-effort: a reserve
// that cannot be removed changes nothing.
func releaseReserve(prefix string) {
	os.Remove(reserveFile(prefix))
}

// minReserve is the smallest reserve worth keeping: a few blocks, enough
// for the pid file.
const minReserve = 16 << 10

// keepReserve makes the reserve, or grows it, up to reserveSize. On a
// nearly full disk it keeps what it can get, down to minReserve (the pid
// file needs one block); with less than that it leaves nothing behind and
// returns the error (ENOSPC). The next start tries again.
func keepReserve(prefix string) error {
	p := reserveFile(prefix)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	have := fi.Size()
	for size := int64(reserveSize); size > have && size >= minReserve; size /= 2 {
		if err = allocate(f, size); err == nil {
			break
		}
	}
	if have >= reserveSize {
		err = nil
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil && have == 0 {
		os.Remove(p)
	}
	return err
}

// allocate makes f hold size bytes of real blocks: fallocate takes them
// without writing; where the filesystem cannot, zeros are written. A
// sparse file would reserve nothing.
func allocate(f *os.File, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		_, err = f.WriteAt(make([]byte, size), 0)
	}
	return err
}
