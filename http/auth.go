package http

import (
	"errors"
	"mime"
	"net/http"
	"sync"

	todo "github.com/todo-api/todo-api"
	"golang.org/x/crypto/bcrypt"
)

// authResponse is what register and login return. Its token fields follow
// OAuth2's token response, so the docs page's password flow can use it.
type authResponse struct {
	User        *todo.User `json:"user"`
	AccessToken string     `json:"access_token"`
	TokenType   string     `json:"token_type"`
	ExpiresIn   int64      `json:"expires_in"`
}

func (s *Server) bcryptCost() int {
	if s.cfg.BcryptCost == 0 {
		return bcrypt.DefaultCost
	}
	return s.cfg.BcryptCost
}

// issue mints a token for u and writes the auth response.
func (s *Server) issue(w http.ResponseWriter, r *http.Request, status int, u *todo.User) {
	id := todo.Identity{UserID: u.ID}
	if u.Email != nil {
		id.Email = *u.Email
	}
	if u.Name != nil {
		id.Name = *u.Name
	}
	token, expiresIn, err := s.cfg.Issuer.IssueToken(id)
	if err != nil {
		Error(w, r, err)
		return
	}
	encode(w, status, authResponse{User: u, AccessToken: token, TokenType: "bearer", ExpiresIn: int64(expiresIn.Seconds())})
}

var errAccountsOff = todo.Errorf(todo.ENOTFOUND, "Built-in accounts are not enabled on this server.")

func (s *Server) handleRegister() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Issuer == nil {
			Error(w, r, errAccountsOff)
			return
		}
		var body struct {
			Email    *string `json:"email"`
			Password *string `json:"password"`
			Name     *string `json:"name"`
		}
		if err := decode(r, &body); err != nil {
			Error(w, r, err)
			return
		}
		var missing []todo.FieldError
		if body.Email == nil {
			missing = append(missing, todo.FieldError{Field: "email", Message: "is required"})
		}
		if body.Password == nil {
			missing = append(missing, todo.FieldError{Field: "password", Message: "is required"})
		}
		if missing != nil {
			Error(w, r, &todo.Error{Code: todo.EVALIDATION, Message: "The request has invalid fields.", Fields: missing})
			return
		}
		reg := todo.Registration{Email: *body.Email, Password: *body.Password, Name: body.Name}
		if err := reg.Validate(); err != nil {
			Error(w, r, err)
			return
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(reg.Password), s.bcryptCost())
		if err != nil {
			Error(w, r, err)
			return
		}
		u := &todo.User{Email: &reg.Email, Name: reg.Name, PasswordHash: hash}
		if err := s.cfg.Users.CreateUser(r.Context(), u); err != nil {
			Error(w, r, err)
			return
		}
		s.issue(w, r, http.StatusCreated, u)
	})
}

func (s *Server) handleLogin() http.Handler {
	// Compared against when the account does not exist, so that a wrong
	// email costs as much time as a wrong password.
	dummyHash := sync.OnceValue(func() []byte {
		h, _ := bcrypt.GenerateFromPassword([]byte("not a real password, only for timing"), s.bcryptCost())
		return h
	})
	invalid := todo.Errorf(todo.EINVALIDCREDENTIALS, "The email or password is incorrect.")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Issuer == nil {
			Error(w, r, errAccountsOff)
			return
		}
		email, password, err := decodeLogin(r)
		if err != nil {
			Error(w, r, err)
			return
		}
		hash := dummyHash()
		var u *todo.User
		err = todo.Errorf(todo.ENOTFOUND, "No such account.")
		// An address that could never have registered is not looked up.
		if email = todo.NormalizeEmail(email); todo.ValidEmail(email) {
			u, err = s.cfg.Users.FindUserByEmail(r.Context(), email)
		}
		switch {
		case err == nil && u.PasswordHash != nil:
			hash = u.PasswordHash
		case err == nil, todo.ErrorCode(err) == todo.ENOTFOUND:
			u = nil
		default:
			Error(w, r, err)
			return
		}
		// bcrypt reads only the first 72 bytes, so a longer password would
		// match any that starts with the stored one; registration refuses
		// those, and so does login (after the compare, to keep the timing).
		if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || u == nil || len(password) > todo.MaxPasswordBytes {
			Error(w, r, invalid)
			return
		}
		// A hash made at an older cost is re-made at the current one, so
		// that raising BCRYPT_COST does not leave old accounts cheaper to
		// test (and so telling them apart from unknown emails by timing).
		if cost, err := bcrypt.Cost(hash); err == nil && cost != s.bcryptCost() {
			if rehashed, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost()); err == nil {
				if err := s.cfg.Users.UpdatePasswordHash(r.Context(), u.ID, rehashed); err != nil {
					requestInfoFrom(r.Context()).logger().Warn("rehash password", "error", err.Error())
				}
			}
		}
		s.issue(w, r, http.StatusOK, u)
	})
}

// decodeLogin reads {email, password} as JSON, or username/password as a
// form (OAuth2's password grant, which the docs page's Authorize button sends).
// Errors: UNSUPPORTED_MEDIA_TYPE, PAYLOAD_TOO_LARGE, INVALID_JSON, VALIDATION_ERROR.
func decodeLogin(r *http.Request) (email, password string, err error) {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var e, p *string
	if mediaType == "application/x-www-form-urlencoded" {
		if err := r.ParseForm(); err != nil {
			var maxErr *http.MaxBytesError
			if errors.As(err, &maxErr) {
				return "", "", todo.Errorf(todo.EPAYLOADTOOLARGE, "The request body is larger than %d bytes.", maxErr.Limit)
			}
			return "", "", todo.Errorf(todo.EVALIDATION, "The form could not be parsed.")
		}
		if r.PostForm.Has("username") {
			v := r.PostForm.Get("username")
			e = &v
		} else if r.PostForm.Has("email") {
			v := r.PostForm.Get("email")
			e = &v
		}
		if r.PostForm.Has("password") {
			v := r.PostForm.Get("password")
			p = &v
		}
	} else {
		var body struct {
			Email    *string `json:"email"`
			Username *string `json:"username"`
			Password *string `json:"password"`
		}
		if err := decode(r, &body); err != nil {
			return "", "", err
		}
		e, p = body.Email, body.Password
		if e == nil {
			e = body.Username
		}
	}
	var fields []todo.FieldError
	if e == nil || *e == "" {
		fields = append(fields, todo.FieldError{Field: "email", Message: "is required"})
	}
	if p == nil || *p == "" {
		fields = append(fields, todo.FieldError{Field: "password", Message: "is required"})
	}
	if fields != nil {
		return "", "", &todo.Error{Code: todo.EVALIDATION, Message: "The request has invalid fields.", Fields: fields}
	}
	return *e, *p, nil
}

func (s *Server) handleMe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.cfg.Users.FindUserByID(r.Context(), identity(r).UserID)
		if err != nil {
			Error(w, r, err)
			return
		}
		encode(w, http.StatusOK, u)
	})
}
