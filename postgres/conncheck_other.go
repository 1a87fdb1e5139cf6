//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris || illumos)

package postgres

import "net"

// idleConnAlive cannot look at the socket on this system; pgxpool's ping of
// connections idle for over a second is the only check.
func idleConnAlive(net.Conn) bool { return true }
