package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogWriterHoldsInfoLinesUntilTheInterval(t *testing.T) {
	var out syncBuffer
	lw := newLogWriter(&out, 300*time.Millisecond)
	defer lw.Close()
	logger := newLogger(&config{LogLevel: "info", LogFormat: "json"}, lw)

	logger.Info("request", "n", 1)
	if got := out.String(); got != "" {
		t.Fatalf("an info line was written at once: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), `"msg":"request"`) {
		if time.Now().After(deadline) {
			t.Fatal("the info line was never written")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLogWriterWritesWarningsAtOnce(t *testing.T) {
	var out syncBuffer
	lw := newLogWriter(&out, time.Hour)
	defer lw.Close()
	logger := newLogger(&config{LogLevel: "info", LogFormat: "text"}, lw).With("request_id", "r1")

	logger.Info("before")
	logger.Warn("database unreachable")
	got := out.String()
	// The warning takes the info line before it along, in order.
	if i, j := strings.Index(got, "msg=before"), strings.Index(got, `msg="database unreachable"`); i < 0 || j < i {
		t.Fatalf("after a warning the log holds %q", got)
	}
	if !strings.Contains(got, "request_id=r1") {
		t.Fatalf("attributes from With were lost: %q", got)
	}
	logger.Error("boom")
	if !strings.Contains(out.String(), "msg=boom") {
		t.Fatalf("an error line was held back: %q", out.String())
	}
}

func TestLogWriterFlushesWhenFullAndOnClose(t *testing.T) {
	var out syncBuffer
	lw := newLogWriter(&out, time.Hour)
	line := bytes.Repeat([]byte("x"), 1000)
	line[len(line)-1] = '\n'
	n := 0
	for out.String() == "" {
		if _, err := lw.Write(line); err != nil {
			t.Fatal(err)
		}
		n++
		if n > logBufferSize/len(line)+1 {
			t.Fatalf("%d bytes held without a write", n*len(line))
		}
	}
	if n < logBufferSize/len(line) {
		t.Fatalf("written after only %d lines", n)
	}
	lw.Write([]byte("last\n"))
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.HasSuffix(got, "last\n") || len(got) != n*len(line)+len("last\n") {
		t.Fatalf("after Close the output is %d bytes, ending %q; want %d", len(got), got[max(0, len(got)-10):], n*len(line)+5)
	}
}

func TestLogFlushIntervalConfig(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{{"", 100 * time.Millisecond}, {"0", 0}, {"1s", time.Second}} {
		cfg, err := loadConfig(env{"LOG_FLUSH_INTERVAL": tc.value}.get)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.LogFlushInterval != tc.want {
			t.Errorf("LOG_FLUSH_INTERVAL=%q gives %v, want %v", tc.value, cfg.LogFlushInterval, tc.want)
		}
	}
	if _, err := loadConfig(env{"LOG_FLUSH_INTERVAL": "soon"}.get); err == nil {
		t.Error("LOG_FLUSH_INTERVAL=soon was accepted")
	}
}

var _ slog.Handler = flushOnWarn{}
