//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris || illumos

package postgres

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// idleConnAlive reports whether an idle connection's socket is still open
// and quiet. An idle PostgreSQL connection receives nothing unasked, so
// pending bytes (the FATAL a server sends as it shuts down) or the end of
// the stream mean the session is over. It peeks without blocking, one
// system call, so the check is free next to a round trip; the MySQL driver
// does the same for the same reason. A connection it cannot inspect counts
// as alive.
//
// It peeks under Control, not Read: pgconn may have left a background
// reader parked in Read on the idle connection, holding the read lock, and
// waiting for that lock would block the acquire forever.
func idleConnAlive(conn net.Conn) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	alive := true
	err = rc.Control(func(fd uintptr) {
		var buf [1]byte
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK):
		case err != nil, n >= 0:
			// Bytes waiting, the peer's FIN (n == 0), or a socket error.
			alive = false
		}
	})
	return alive && err == nil
}
