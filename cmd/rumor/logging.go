package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
)

// logSpec is a parsed --log-level value: a default level and per-subsystem
// overrides, in go-log's GOLOG_LOG_LEVEL syntax ("info,rumor/relay=debug").
type logSpec struct {
	Default    string
	Subsystems map[string]string
}

// parseLogLevel parses "LEVEL[,SUBSYSTEM=LEVEL...]". The default level may
// be omitted ("rumor/relay=debug"), which keeps go-log's default. Levels
// are go-log's: debug, info, warn, error, dpanic, panic, fatal.
func parseLogLevel(s string) (logSpec, error) {
	spec := logSpec{Subsystems: map[string]string{}}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, level, isSub := strings.Cut(part, "=")
		if !isSub {
			level = name
		}
		level = strings.TrimSpace(level)
		if _, err := golog.Parse(level); err != nil {
			return logSpec{}, fmt.Errorf("log level %q: %w", part, err)
		}
		if !isSub {
			if spec.Default != "" {
				return logSpec{}, fmt.Errorf("log level %q: two default levels (%q and %q)", s, spec.Default, level)
			}
			spec.Default = level
			continue
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return logSpec{}, fmt.Errorf("log level %q: empty subsystem name", part)
		}
		spec.Subsystems[name] = level
	}
	return spec, nil
}

// applyLogLevel sets go-log's levels from s and routes go-libp2p's slog
// loggers through go-log, so one flag controls every subsystem
// (rumor/relay, pubsub, swarm2, ...).
func applyLogLevel(s string) error {
	spec, err := parseLogLevel(s)
	if err != nil {
		return err
	}
	gologshim.SetDefaultHandler(golog.SlogHandler())
	// Libraries that log through slog.Default() with no subsystem name
	// (go-libp2p-pubsub's tag tracer) get go-log's output at the default
	// level; go-log's bridge alone would let their debug lines through.
	min := slog.LevelInfo
	if spec.Default != "" {
		min = slogLevel(spec.Default)
	}
	slog.SetDefault(slog.New(levelHandler{Handler: golog.SlogHandler(), min: min}))
	if spec.Default != "" {
		if err := golog.SetLogLevel("*", spec.Default); err != nil {
			return err
		}
	}
	for name, level := range spec.Subsystems {
		if err := golog.SetLogLevel(name, level); err != nil {
			return err
		}
	}
	return nil
}

// slogLevel maps a go-log level name (already validated) to slog's.
func slogLevel(name string) slog.Level {
	lvl, _ := golog.Parse(name)
	switch {
	case lvl <= golog.LevelDebug:
		return slog.LevelDebug
	case lvl == golog.LevelInfo:
		return slog.LevelInfo
	case lvl == golog.LevelWarn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// levelHandler drops records below min before they reach Handler.
type levelHandler struct {
	slog.Handler
	min slog.Level
}

// Enabled reports whether a record at level passes both filters.
func (h levelHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.min && h.Handler.Enabled(ctx, level)
}

// WithAttrs keeps the level filter on derived handlers.
func (h levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelHandler{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

// WithGroup keeps the level filter on derived handlers.
func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{Handler: h.Handler.WithGroup(name), min: h.min}
}
