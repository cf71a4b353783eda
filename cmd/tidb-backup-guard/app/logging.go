package app

import "github.com/go-logr/logr"

// MaxVerbosity caps every logger of the server. client-go logs request URLs at V(6),
// headers at V(7) and whole request and response bodies at V(8), Secrets and Backups
// included, through the contextual logger it is given. No --zap-log-level may reach those:
// the server's own logs use V(0) and V(1), controller-runtime's traces V(5).
const MaxVerbosity = 5

// capVerbosity returns log with everything above MaxVerbosity dropped.
func capVerbosity(log logr.Logger) logr.Logger {
	if log.GetSink() == nil {
		return log
	}
	return logr.New(capSink{sink: log.GetSink()})
}

type capSink struct{ sink logr.LogSink }

var _ logr.CallDepthLogSink = capSink{}

func (s capSink) Init(info logr.RuntimeInfo) { s.sink.Init(info) }

func (s capSink) Enabled(level int) bool { return level <= MaxVerbosity && s.sink.Enabled(level) }

func (s capSink) Info(level int, msg string, kv ...any) {
	if level <= MaxVerbosity {
		s.sink.Info(level, msg, kv...)
	}
}

func (s capSink) Error(err error, msg string, kv ...any) { s.sink.Error(err, msg, kv...) }

func (s capSink) WithValues(kv ...any) logr.LogSink { return capSink{s.sink.WithValues(kv...)} }

func (s capSink) WithName(name string) logr.LogSink { return capSink{s.sink.WithName(name)} }

// WithCallDepth keeps caller information right through the wrapper.
func (s capSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.sink.(logr.CallDepthLogSink); ok {
		return capSink{cd.WithCallDepth(depth + 1)}
	}
	return s
}
