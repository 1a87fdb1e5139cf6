// Package todo is the domain of todo-api: tasks, users, the identities that
// tokens carry, the services that store them, and the errors whose codes are
// the HTTP contract's codes.
//
// It imports only the standard library. The sqlite and postgres packages
// implement its services; the http package serves them; cmd/todo-api wires
// the concrete parts together.
package todo
