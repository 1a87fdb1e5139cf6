package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	todo "github.com/todo-api/todo-api"
)

// UserService stores accounts in PostgreSQL. It implements todo.UserService.
type UserService struct {
	db *DB
}

var _ todo.UserService = (*UserService)(nil)

// NewUserService returns a UserService backed by db.
func NewUserService(db *DB) *UserService {
	return &UserService{db: db}
}

// userColumns is the column list user queries return, in scanUser's order.
const userColumns = `id, email, name, password_hash, created_at, updated_at`

// CreateUser stores a new account with the given password hash and sets u.ID,
// u.CreatedAt and u.UpdatedAt. The unique constraint on email decides a race
// between two registrations.
// Errors: EMAIL_TAKEN, SERVICE_UNAVAILABLE.
func (s *UserService) CreateUser(ctx context.Context, u *todo.User) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("create user: new id: %w", err)
	}
	now := s.db.now()
	var created *todo.User
	err = s.db.run(ctx, "create user", "", func(q *userConn) error {
		var err error
		created, err = scanUser(q.QueryRow(ctx, `
			INSERT INTO users (id, email, name, password_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5)
			RETURNING `+userColumns,
			id.String(), u.Email, u.Name, u.PasswordHash, now))
		if isEmailTaken(err) {
			return todo.Errorf(todo.EEMAILTAKEN, "An account with this email already exists.")
		}
		return err
	})
	if err != nil {
		return err
	}
	*u = *created
	return nil
}

// UpdatePasswordHash replaces the account's password hash.
// Errors: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *UserService) UpdatePasswordHash(ctx context.Context, id string, hash []byte) error {
	return s.db.run(ctx, "update password hash", "", func(q *userConn) error {
		tag, err := q.Exec(ctx, `UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`, hash, s.db.now(), id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return todo.Errorf(todo.ENOTFOUND, "User not found.")
		}
		return nil
	})
}

// FindUserByID returns the account with that id.
// Errors: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *UserService) FindUserByID(ctx context.Context, id string) (*todo.User, error) {
	var u *todo.User
	err := s.db.read(ctx, "find user", "", func(q *userConn) error {
		var err error
		u, err = userOrNotFound(scanUser(q.QueryRow(ctx,
			`SELECT `+userColumns+` FROM users WHERE id = $1`, id)))
		return err
	})
	return u, err
}

// FindUserByEmail returns the account with that (normalized) email, password
// hash included.
// Errors: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *UserService) FindUserByEmail(ctx context.Context, email string) (*todo.User, error) {
	var u *todo.User
	err := s.db.read(ctx, "find user by email", "", func(q *userConn) error {
		var err error
		u, err = userOrNotFound(scanUser(q.QueryRow(ctx,
			`SELECT `+userColumns+` FROM users WHERE email = $1`, email)))
		return err
	})
	return u, err
}

// EnsureUser creates the user a token names if it has no row yet, and updates
// its email and name when the token carries different ones. Empty claims mean
// "not given": they are stored as NULL and never overwrite. An email already
// used by another account is left out rather than failing the request, and so
// is a claim PostgreSQL's text cannot hold (NUL, invalid UTF-8).
// Errors: SERVICE_UNAVAILABLE.
func (s *UserService) EnsureUser(ctx context.Context, id todo.Identity) error {
	email := storableClaim(todo.NormalizeEmail(id.Email))
	name := storableClaim(id.Name)
	now := s.db.now()
	return s.db.run(ctx, "ensure user", "", func(q *userConn) error {
		// One statement whether or not the row exists; it writes only when
		// something changed, so the common request costs no row version.
		const upsert = `
			INSERT INTO users (id, email, name, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4)
			ON CONFLICT (id) DO UPDATE
			SET email = COALESCE(EXCLUDED.email, users.email),
			    name = COALESCE(EXCLUDED.name, users.name),
			    updated_at = EXCLUDED.updated_at
			WHERE (EXCLUDED.email IS NOT NULL AND EXCLUDED.email IS DISTINCT FROM users.email)
			   OR (EXCLUDED.name IS NOT NULL AND EXCLUDED.name IS DISTINCT FROM users.name)`
		_, err := q.Exec(ctx, upsert, id.UserID, email, name, now)
		if isEmailTaken(err) {
			_, err = q.Exec(ctx, upsert, id.UserID, nil, name, now)
		}
		return err
	})
}

// scanUser reads one user from a row holding userColumns; a statement that
// matched no row gives pgx.ErrNoRows.
func scanUser(row pgx.Row) (*todo.User, error) {
	var u todo.User
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return nil, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	u.UpdatedAt = u.UpdatedAt.UTC()
	return &u, nil
}

func userOrNotFound(u *todo.User, err error) (*todo.User, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, todo.Errorf(todo.ENOTFOUND, "User not found.")
	}
	return u, err
}

// isEmailTaken reports whether err is a unique violation of users' email.
func isEmailTaken(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "users_email_key"
}

// storableClaim returns nil for a claim that is empty or that a text column
// cannot hold, so it is stored as NULL or left as it was.
func storableClaim(s string) *string {
	if s == "" || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return nil
	}
	return &s
}
