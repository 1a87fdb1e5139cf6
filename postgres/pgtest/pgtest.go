// Package pgtest gives tests real PostgreSQL databases: a new, empty
// database per call to URL, dropped at cleanup.
//
// The databases live on the server TEST_DATABASE_URL names (an admin URL,
// e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), or, when
// it is unset, on one throwaway cluster the test process starts from the
// installed PostgreSQL binaries. A package using the throwaway cluster wires
// Main into its TestMain so the cluster stops when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// UserURL is URL for a database owned by a new role that is neither a
// superuser nor BYPASSRLS, so that row-level security applies as it does in
// production. NewCluster gives a test a server of its own to stop and
// start; NewPgBouncer puts PgBouncer in transaction mode in front of a
// database.
//
// With neither available, tests are skipped with a loud message, or fail
// when CI=true.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// shared is the throwaway cluster of this test process. It is package state
// because URL has no other place to find it: the testing package gives the
// tests of one process nothing else in common. Main stops it.
var shared struct {
	mu      sync.Mutex
	inMain  bool // Main is running the tests, so it will stop the cluster
	cluster *Cluster
	err     error // why the cluster could not be started; not retried
}

// Main runs the tests and then stops the throwaway cluster, if URL started
// one. Call it from TestMain; with TEST_DATABASE_URL set it only runs m.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()

	// Returning lets the testing package exit with m.Run's result.
	m.Run()

	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster != nil {
		if err := shared.cluster.close(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop cluster: %v\n", err)
		}
		shared.cluster = nil
	}
}

// URL returns the URL of a new, empty database created for this test and
// dropped at cleanup.
func URL(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = sharedClusterURL(tb)
	}
	name := databaseName(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE ends sessions a test left open, such as a pool not closed.
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(admin, name)
	if err != nil {
		tb.Fatalf("pgtest: TEST_DATABASE_URL: %v", err)
	}
	return u
}

// sharedClusterURL returns the admin URL of the process's throwaway cluster,
// starting it on first use. Without Main to stop it, the test gets a cluster
// of its own instead, stopped at its cleanup.
func sharedClusterURL(tb testing.TB) string {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		tb.Logf("pgtest: TestMain does not call pgtest.Main; starting a cluster for %s alone", tb.Name())
		return NewCluster(tb).URL("postgres")
	}
	if shared.cluster == nil && shared.err == nil {
		shared.cluster, shared.err = newCluster()
	}
	if shared.err != nil {
		unavailable(tb, shared.err)
	}
	return shared.cluster.URL("postgres")
}

func adminExec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// databaseName returns a unique name that still says which test made it,
// within PostgreSQL's 63-byte limit on identifiers.
func databaseName(tb testing.TB) string {
	var random [6]byte
	rand.Read(random[:])
	test := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(tb.Name()), "_"), "_")
	if len(test) > 40 {
		test = test[len(test)-40:]
	}
	return "pgtest_" + test + "_" + hex.EncodeToString(random[:])
}

// withDatabase returns connString with its database replaced by name.
func withDatabase(connString, name string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// Keyword/value form: a later keyword overrides an earlier one.
	return connString + " dbname=" + name, nil
}
