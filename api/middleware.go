package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"
)

// HeaderRequestID carries the request id in and out.
const HeaderRequestID = "X-Request-Id"

type ctxKey int

const (
	ctxRequestID ctxKey = iota + 1
	ctxLogger
	ctxPrincipal
)

// requestIDPattern is what an incoming request id must look like to be
// reused: short and free of anything that could forge a log line.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// RequestID returns the id of the request ctx belongs to ("" outside one).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxRequestID).(string)
	return id
}

func loggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxLogger).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// withRequestID gives every request an id: the caller's X-Request-Id when
// it is well-formed, else a fresh one. The id is echoed in the response,
// put in the context and on the logger.
func withRequestID(newID func() string, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !requestIDPattern.MatchString(id) {
			id = newID()
		}
		w.Header().Set(HeaderRequestID, id)
		ctx := context.WithValue(r.Context(), ctxRequestID, id)
		ctx = context.WithValue(ctx, ctxLogger, log.With(slog.String("request_id", id)))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// statusWriter remembers the status written, so the access log can report
// it and the recoverer knows whether it may still answer.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// withAccessLog logs one line per request: no query string and no body,
// which may hold PHI.
func withAccessLog(clock func() time.Time, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := clock()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		// r.Pattern is set by the ServeMux further in (it routes this very
		// request value): the route, free of ids, for grouping.
		loggerFrom(r.Context()).LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("method", r.Method), slog.String("route", r.Pattern), slog.String("path", r.URL.Path), slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes), slog.Duration("duration", clock().Sub(start)))
	})
}

// withRecoverer turns a panic into a 500 problem (when nothing has been
// written yet) and logs it with its stack. http.ErrAbortHandler keeps its
// meaning: it aborts the response.
func withRecoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			loggerFrom(r.Context()).LogAttrs(r.Context(), slog.LevelError, "handler panicked",
				slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
			if sw.status == 0 {
				WriteError(sw, r, fmt.Errorf("panic: %v", v))
				return
			}
			// Part of the response is out: cut the connection rather than
			// let the client take a truncated body for a whole one.
			panic(http.ErrAbortHandler)
		}()
		next.ServeHTTP(sw, r)
	})
}

// HSTSValue is the Strict-Transport-Security of every response over
// HTTPS: two years, subdomains included.
const HSTSValue = "max-age=63072000; includeSubDomains"

// withSecurityHeaders sets the headers every response of a JSON API
// holding PHI should carry. Cache-Control: no-store keeps PHI out of
// browser and proxy caches. Strict-Transport-Security is sent when the
// request came over TLS, or always when behindTLSProxy says a proxy
// terminates TLS in front of the service (browsers ignore it over plain
// HTTP, so it is harmless there).
func withSecurityHeaders(behindTLSProxy bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil || behindTLSProxy {
			h.Set("Strict-Transport-Security", HSTSValue)
		}
		next.ServeHTTP(w, r)
	})
}
