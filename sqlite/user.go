package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	sqlite3 "modernc.org/sqlite/lib"

	todo "github.com/todo-api/todo-api"
)

// UserService stores accounts in the database.
type UserService struct {
	db *DB
}

var _ todo.UserService = (*UserService)(nil)

// NewUserService returns a UserService backed by db.
func NewUserService(db *DB) *UserService {
	return &UserService{db: db}
}

const userColumns = `id, email, name, password_hash, created_at, updated_at`

func errUserNotFound() error {
	return todo.Errorf(todo.ENOTFOUND, "User not found.")
}

// CreateUser stores a new account with the given password hash and sets
// u.ID, u.CreatedAt and u.UpdatedAt.
// Errors: EMAIL_TAKEN, SERVICE_UNAVAILABLE.
func (s *UserService) CreateUser(ctx context.Context, u *todo.User) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("create user: new id: %w", err)
	}
	now := s.db.now()
	// The unique index on email decides, so two registrations racing for
	// one email cannot both succeed.
	err = s.db.write(ctx, "create user", func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.db.txExec(ctx, tx,
			`INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			id.String(), u.Email, u.Name, u.PasswordHash, now.UnixMicro(), now.UnixMicro())
		if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
			return todo.Errorf(todo.EEMAILTAKEN, "An account with this email already exists.")
		} else if err != nil {
			return wrapError("create user", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	u.ID = id.String()
	u.CreatedAt = now
	u.UpdatedAt = now
	return nil
}

// UpdatePasswordHash replaces the account's password hash.
// Errors: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *UserService) UpdatePasswordHash(ctx context.Context, id string, hash []byte) error {
	now := s.db.now()
	return s.db.write(ctx, "update password hash", func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.db.txExec(ctx, tx,
			`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, hash, now.UnixMicro(), id)
		if err != nil {
			return wrapError("update password hash", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrapError("update password hash", err)
		} else if n == 0 {
			return errUserNotFound()
		}
		return nil
	})
}

// FindUserByID returns the account with that id.
// Errors: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *UserService) FindUserByID(ctx context.Context, id string) (*todo.User, error) {
	return s.findUser(ctx, "find user by id", `SELECT `+userColumns+` FROM users WHERE id = ?`, id)
}

// FindUserByEmail returns the account with that normalized email,
// password hash included.
// Errors: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *UserService) FindUserByEmail(ctx context.Context, email string) (*todo.User, error) {
	return s.findUser(ctx, "find user by email", `SELECT `+userColumns+` FROM users WHERE email = ?`, email)
}

func (s *UserService) findUser(ctx context.Context, op, query string, arg string) (*todo.User, error) {
	var (
		u                    todo.User
		email, name          sql.NullString
		createdAt, updatedAt int64
	)
	stmt, err := s.db.readStmts.get(ctx, query)
	if err != nil {
		return nil, wrapError(op, err)
	}
	err = stmt.QueryRowContext(ctx, arg).Scan(&u.ID, &email, &name, &u.PasswordHash, &createdAt, &updatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUserNotFound()
	} else if err != nil {
		return nil, wrapError(op, err)
	}
	if email.Valid {
		u.Email = &email.String
	}
	if name.Valid {
		u.Name = &name.String
	}
	u.CreatedAt = fromMicros(createdAt)
	u.UpdatedAt = fromMicros(updatedAt)
	return &u, nil
}

// EnsureUser creates the user a token names if it has no row yet, and
// updates its email and name when the token carries different ones. Empty
// claims mean "not given": they are stored as NULL and never overwrite.
// An email already used by another account is left out rather than
// failing the request.
// Errors: SERVICE_UNAVAILABLE.
func (s *UserService) EnsureUser(ctx context.Context, id todo.Identity) error {
	email := todo.NormalizeEmail(id.Email)

	// Every authenticated request lands here; when the row is already up to
	// date, a read on the reader pool spares the single writer.
	var storedEmail, storedName sql.NullString
	stmt, err := s.db.readStmts.get(ctx, `SELECT email, name FROM users WHERE id = ?`)
	if err != nil {
		return wrapError("ensure user", err)
	}
	err = stmt.QueryRowContext(ctx, id.UserID).Scan(&storedEmail, &storedName)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return wrapError("ensure user", err)
	case (email == "" || email == storedEmail.String) && (id.Name == "" || id.Name == storedName.String):
		return nil
	}

	return s.db.write(ctx, "ensure user", func(ctx context.Context, tx *sql.Tx) error {
		err := s.upsertUser(ctx, tx, id.UserID, email, id.Name)
		if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE && email != "" {
			// Another account owns the email: keep the row without it. The
			// failed statement changed nothing, so the transaction goes on.
			err = s.upsertUser(ctx, tx, id.UserID, "", id.Name)
		}
		if err != nil {
			return wrapError("ensure user", err)
		}
		return nil
	})
}

// upsertUser inserts the user or updates the claims it is given; "" is not given.
func (s *UserService) upsertUser(ctx context.Context, tx *sql.Tx, userID, email, name string) error {
	now := s.db.now().UnixMicro()
	_, err := s.db.txExec(ctx, tx, `
		INSERT INTO users (id, email, name, created_at, updated_at)
		VALUES (?, nullif(?, ''), nullif(?, ''), ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			email = coalesce(excluded.email, users.email),
			name = coalesce(excluded.name, users.name),
			updated_at = excluded.updated_at
		WHERE excluded.email IS NOT users.email AND excluded.email IS NOT NULL
			OR excluded.name IS NOT users.name AND excluded.name IS NOT NULL`,
		userID, email, name, now, now)
	return err
}
