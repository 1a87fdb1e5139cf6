package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// resolveSecret returns the HS256 secret and where it came from: the
// configuration, or — on SQLite with neither JWT_SECRET nor JWKS_URL set —
// a secret generated once and kept beside the database file, so tokens
// survive restarts with zero configuration. It returns nil when tokens come
// only from JWKS_URL.
func resolveSecret(cfg *config) ([]byte, string, error) {
	if cfg.JWTSecret != "" {
		return []byte(cfg.JWTSecret), "JWT_SECRET", nil
	}
	if cfg.JWKSURL != "" || cfg.Engine != "sqlite" {
		return nil, "off", nil
	}
	path := cfg.DBPath + ".secret"
	b, err := os.ReadFile(path)
	if err == nil {
		secret := strings.TrimSpace(string(b))
		if len(secret) < 32 {
			return nil, "", fmt.Errorf("%s holds a secret shorter than 32 bytes; delete it to make a new one", path)
		}
		return []byte(secret), path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("read generated secret: %w", err)
	}
	var raw [48]byte
	rand.Read(raw[:])
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	// Write aside, then link into place: a concurrent start either wins or
	// reads the winner's complete file, never a half-written one.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return nil, "", fmt.Errorf("keep generated secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(secret + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, "", fmt.Errorf("keep generated secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return resolveSecret(cfg)
	} else if err != nil {
		return nil, "", fmt.Errorf("keep generated secret: %w", err)
	}
	return []byte(secret), path + " (generated)", nil
}
