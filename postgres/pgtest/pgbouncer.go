package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBouncer is a PgBouncer process in transaction pool mode in front of one
// database, as Neon's "-pooler" endpoints are: each transaction may run on
// a different server connection, so session state (prepared statements,
// SET, advisory locks) does not follow the client.
type PgBouncer struct {
	url string
}

// NewPgBouncer starts PgBouncer in front of the database dbURL names (a
// postgres:// URL on 127.0.0.1), stopped at cleanup. Clients log in to it
// as anyone; it logs in to the server as dbURL's user. It allows serverConns
// server connections, fewer than a test's clients, so that transactions of
// one client land on different server connections. It skips the test when
// pgbouncer is not installed, and fails it instead when CI=true.
func NewPgBouncer(tb testing.TB, dbURL string, serverConns int) *PgBouncer {
	tb.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		// Debian puts it in /usr/sbin, off a plain user's PATH.
		bin = "/usr/sbin/pgbouncer"
		if _, statErr := os.Stat(bin); statErr != nil {
			unavailable(tb, errors.New("pgbouncer is not installed (apt-get install pgbouncer)"))
		}
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatalf("pgtest: pgbouncer upstream: %v", err)
	}
	dbname := strings.TrimPrefix(u.Path, "/")
	password, _ := u.User.Password()
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })

	upstream := fmt.Sprintf("host=%s port=%s dbname=%s user=%s", u.Hostname(), u.Port(), dbname, u.User.Username())
	if password != "" {
		upstream += " password=" + password
	}
	// auth_type any: the database entry names the server login, whatever
	// the client says.
	ini := fmt.Sprintf(`[databases]
%s = %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = %d
max_client_conn = 1000
server_lifetime = 3600
ignore_startup_parameters = extra_float_digits
logfile = %s
`, dbname, upstream, port, serverConns, filepath.Join(dir, "pgbouncer.log"))
	conf := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(conf, []byte(ini), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, conf)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root.
		cred, err := postgresCredential()
		if err != nil {
			unavailable(tb, err)
		}
		cmd.SysProcAttr.Credential = cred
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			tb.Fatal(err)
		}
	}
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("pgtest: start pgbouncer: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})

	u.Host = "127.0.0.1:" + strconv.Itoa(port)
	b := &PgBouncer{url: u.String()}
	probe, err := pgx.ParseConfig(b.url)
	if err != nil {
		tb.Fatal(err)
	}
	probe.DefaultQueryExecMode = pgx.QueryExecModeExec
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		conn, err := pgx.ConnectConfig(ctx, probe)
		if err == nil {
			conn.Close(ctx)
			return b
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			tb.Fatalf("pgtest: pgbouncer exited: %s\n%s", out, log)
		case <-ctx.Done():
			tb.Fatalf("pgtest: pgbouncer did not accept connections within 15s: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URL returns the URL of the database through PgBouncer, with the original
// URL's parameters and none added: callers choose the statement mode.
func (b *PgBouncer) URL() string {
	return b.url
}
