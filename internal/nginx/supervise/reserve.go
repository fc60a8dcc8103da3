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

// keepReserve makes the reserve if it is missing. On a full disk it fails
// (ENOSPC) and leaves nothing behind; the next start tries again.
func keepReserve(prefix string) error {
	p := reserveFile(prefix)
	if fi, err := os.Stat(p); err == nil && fi.Size() == reserveSize {
		return nil
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// fallocate takes the blocks without writing them; where the
	// filesystem has none, zeros are written instead. A sparse file would
	// reserve nothing.
	err = syscall.Fallocate(int(f.Fd()), 0, 0, reserveSize)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		_, err = f.Write(make([]byte, reserveSize))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
	}
	return err
}
