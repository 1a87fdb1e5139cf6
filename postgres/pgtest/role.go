package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// UserURL returns the URL of a new, empty database owned by a new login
// role that is neither a superuser nor BYPASSRLS, so row-level security
// applies to it as it does to a production server's role. The database and
// the role live on the same server as URL's and are dropped at cleanup.
func UserURL(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = sharedClusterURL(tb)
	}
	return newOwnedDatabase(tb, admin, true)
}

// UserURL is the package's UserURL on this cluster. Nothing is dropped at
// cleanup: the cluster itself is removed, and it may be stopped by then.
func (c *Cluster) UserURL(tb testing.TB) string {
	tb.Helper()
	return newOwnedDatabase(tb, c.URL("postgres"), false)
}

func newOwnedDatabase(tb testing.TB, admin string, drop bool) string {
	tb.Helper()
	name := databaseName(tb)
	var random [12]byte
	rand.Read(random[:])
	password := hex.EncodeToString(random[:])
	role := pgx.Identifier{name}.Sanitize()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The password matters only on servers that ask for one; trust ignores it.
	err := adminExec(ctx, admin, fmt.Sprintf(
		"CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '%s'", role, password))
	if err != nil {
		tb.Fatalf("pgtest: create role %s: %v", name, err)
	}
	if err := adminExec(ctx, admin, "CREATE DATABASE "+role+" OWNER "+role); err != nil {
		adminExec(ctx, admin, "DROP ROLE "+role)
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	if drop {
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+role+" WITH (FORCE)"); err != nil {
				tb.Errorf("pgtest: drop database %s: %v", name, err)
			}
			if err := adminExec(ctx, admin, "DROP ROLE IF EXISTS "+role); err != nil {
				tb.Errorf("pgtest: drop role %s: %v", name, err)
			}
		})
	}
	u, err := withUser(admin, name, password, name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return u
}

// withUser returns connString connecting to dbname as user with password.
func withUser(connString, user, password, dbname string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", err
		}
		u.User = url.UserPassword(user, password)
		u.Path = "/" + dbname
		u.RawPath = ""
		return u.String(), nil
	}
	return fmt.Sprintf("%s user=%s password=%s dbname=%s", connString, user, password, dbname), nil
}
