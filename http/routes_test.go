package http

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
)

// TestRoutesMatchDocument keeps routes.go and openapi.json in step: the
// same routes.
func TestRoutesMatchDocument(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("document is invalid: %v", err)
	}
	var documented []string
	for _, path := range doc.Paths.InMatchingOrder() {
		for method := range doc.Paths.Value(path).Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	var served []string
	for _, rt := range (&Server{metrics: newMetrics(prometheus.NewRegistry())}).routes() {
		if rt.pattern != "GET /docs/" {
			served = append(served, rt.pattern)
		}
	}
	slices.Sort(documented)
	sortedServed := slices.Clone(served)
	slices.Sort(sortedServed)
	if !slices.Equal(documented, sortedServed) {
		t.Errorf("routes.go and openapi.json differ:\nserved:     %s\ndocumented: %s", strings.Join(sortedServed, ", "), strings.Join(documented, ", "))
	}
}
