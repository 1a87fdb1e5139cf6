package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a throwaway PostgreSQL server of its own: a data directory made
// by initdb in a temporary directory, listening on 127.0.0.1 on a free port
// and on a private unix socket directory. Tests that stop and restart the
// server use one; everything else uses URL.
type Cluster struct {
	bin  string // directory holding initdb and postgres
	dir  string // removed when the cluster is closed
	data string
	port int
	cred *syscall.Credential // non-nil when running as root: run as postgres
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *os.File
}

// NewCluster initializes and starts a new cluster, stopped and removed at
// cleanup. It skips the test when PostgreSQL's binaries are not installed,
// and fails it instead when CI=true.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := newCluster()
	if err != nil {
		unavailable(tb, err)
	}
	tb.Cleanup(func() {
		if err := c.close(); err != nil {
			tb.Errorf("close cluster: %v", err)
		}
	})
	return c
}

// URL returns the URL of database dbname on the cluster, as the superuser
// postgres, over TCP.
func (c *Cluster) URL(dbname string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, dbname)
}

// Start starts the stopped cluster again, on the same port, and waits until
// it accepts connections.
func (c *Cluster) Start(tb testing.TB) {
	tb.Helper()
	if err := c.start(); err != nil {
		tb.Fatalf("start cluster: %v", err)
	}
}

// Stop shuts the cluster down the fast way: open sessions are terminated
// and their clients see the server go away, as in a failover.
func (c *Cluster) Stop(tb testing.TB) {
	tb.Helper()
	if err := c.stop(); err != nil {
		tb.Fatalf("stop cluster: %v", err)
	}
}

func newCluster() (_ *Cluster, err error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		c.cred, err = postgresCredential()
		if err != nil {
			return nil, err
		}
	}
	// Not t.TempDir: its parents are private to root, and the server runs
	// as postgres.
	c.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(c.dir)
		}
	}()
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, err
		}
	}
	c.data = filepath.Join(c.dir, "data")
	c.log, err = os.Create(filepath.Join(c.dir, "server.log"))
	if err != nil {
		return nil, err
	}
	initdb := c.command("initdb", "-D", c.data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		c.log.Close()
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	if c.port, err = freePort(); err != nil {
		c.log.Close()
		return nil, err
	}
	if err := c.start(); err != nil {
		c.log.Close()
		return nil, err
	}
	return c, nil
}

// command returns cmd from the cluster's binaries, run as postgres when the
// test runs as root.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd
}

func (c *Cluster) start() error {
	if c.cmd != nil {
		return errors.New("cluster is already running")
	}
	// The postgres binary runs in the foreground as our child rather than
	// through pg_ctl, so that the kernel stops it if the test process dies
	// without cleaning up (a panic, a timeout, a kill).
	cmd := c.command("postgres", "-D", c.data,
		"-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-k", c.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB")
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	cmd.Stdout = c.log
	cmd.Stderr = c.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	c.cmd, c.done = cmd, done

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-done:
			c.cmd = nil
			return fmt.Errorf("postgres exited at start; log %s:\n%s", c.log.Name(), c.logTail())
		case <-ctx.Done():
			c.stop()
			return fmt.Errorf("postgres did not accept connections within 30s: %v\n%s", err, c.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) stop() error {
	if c.cmd == nil {
		return nil
	}
	defer func() { c.cmd = nil }()
	// SIGINT is PostgreSQL's fast shutdown.
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
		return errors.New("postgres ignored fast shutdown for 30s; killed")
	}
}

func (c *Cluster) close() error {
	err := c.stop()
	c.log.Close()
	return errors.Join(err, os.RemoveAll(c.dir))
}

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(c.log.Name())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// findBinaries returns the directory of the newest installed PostgreSQL
// server binaries: Debian's /usr/lib/postgresql/N/bin, else initdb on PATH.
func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = slices.DeleteFunc(dirs, func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "initdb"))
		return err != nil
	})
	if len(dirs) > 0 {
		slices.SortFunc(dirs, func(a, b string) int {
			return majorVersion(a) - majorVersion(b)
		})
		return dirs[len(dirs)-1], nil
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(initdb), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, postgres) in /usr/lib/postgresql/*/bin or on PATH")
}

func majorVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and no postgres user to run the server as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// unavailable ends a test that needs PostgreSQL when none can be had: a skip
// on a developer machine, a failure on CI where a skip would hide the suite.
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	msg := fmt.Sprintf("PostgreSQL TESTS NOT RUN: %v (set TEST_DATABASE_URL to an admin URL, or install the PostgreSQL server binaries)", err)
	if strings.EqualFold(os.Getenv("CI"), "true") {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}
