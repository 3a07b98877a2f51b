package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
)

// Config is what the HTTP API is built from.
type Config struct {
	// Store backs the readiness check.
	Store eventstore.Store
	// Logger receives access logs and errors (never bodies, hashes or tokens).
	Logger *slog.Logger
	// Accounts authenticates sign-ins (*commands.Accounts).
	Accounts AccountService
	// Refresh stores refresh tokens (OpenSQLiteRefreshTokens in production).
	Refresh RefreshTokens
	// Memberships fills the clinics claim of access tokens; nil means the
	// organization Directory over Store (see directory.go).
	Memberships Memberships
	// Codec encodes and decodes the events the API writes and reads; the
	// service's seals PHI (codec.Registry.WithSealer). Nil: a plain one
	// (tests).
	Codec *codec.Registry
	// Organization handles the organization, book and design plan routes
	// (*commands.Organization); nil means one over Store and Clock.
	Organization OrganizationService
	// Tokens configures access tokens; its Clock defaults to Clock.
	Tokens TokenConfig
	// OIDC, when enabled, also accepts access tokens of an external
	// OpenID Connect issuer, mapped to careflow accounts (oidc.go); its
	// Clock defaults to Clock.
	OIDC OIDCConfig
	// SessionEnds keeps when an admin ended a user's sessions; nil means
	// Refresh, which must then implement it (both stores here do).
	SessionEnds SessionEnds
	// BehindTLSProxy says clients reach the service over HTTPS through a
	// proxy that terminates TLS: responses then carry
	// Strict-Transport-Security although the request came in plain HTTP.
	BehindTLSProxy bool
	// RefreshTTL is the absolute sign-in lifetime (default 12 h).
	RefreshTTL time.Duration
	// LoginLimits bounds sign-in attempts; zero means DefaultLoginLimits.
	LoginLimits LoginLimits
	// Policies is the policy table; nil means DefaultPolicies().
	Policies Policies
	// Care wires the care routes (sessions, assignments, views, audit,
	// access log); zero registers them answering 503. See CareConfig.
	Care CareConfig
	// Reactions wires the notification and webhook routes; zero registers
	// them answering 503. See ReactionsConfig.
	Reactions ReactionsConfig
	// Projections, when set, is part of the readiness check.
	Projections ProjectionStatus
	// Metrics records HTTP metrics and serves /metrics (NewMetrics); nil
	// keeps none and /metrics answers 404.
	Metrics *Metrics
	// Clock and NewRequestID default to time.Now and random UUIDs.
	Clock        func() time.Time
	NewRequestID func() string
}

// Server is careflow's HTTP API: middleware around a policy-enforcing
// router.
type Server struct {
	handler http.Handler
	router  *Router
}

// NewServer builds the API. Middleware, outermost first: request id, access
// log, panic recovery, security headers; then the router, which runs each
// route's policy (authentication, role, tenant) before its handler.
func NewServer(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("api: Store is required"))
	}
	if cfg.Accounts == nil {
		errs = append(errs, errors.New("api: Accounts is required"))
	}
	if cfg.Refresh == nil {
		errs = append(errs, errors.New("api: Refresh is required"))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.NewRequestID == nil {
		cfg.NewRequestID = uuid.NewString
	}
	if cfg.Tokens.Clock == nil {
		cfg.Tokens.Clock = cfg.Clock
	}
	if cfg.SessionEnds == nil {
		if ends, ok := cfg.Refresh.(SessionEnds); ok {
			cfg.SessionEnds = ends
		} else if cfg.Refresh != nil {
			errs = append(errs, errors.New("api: SessionEnds is required when Refresh does not keep session ends"))
		}
	}
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if cfg.RefreshTTL < 0 {
		errs = append(errs, fmt.Errorf("api: RefreshTTL %s must be positive", cfg.RefreshTTL))
	}
	if cfg.LoginLimits == (LoginLimits{}) {
		cfg.LoginLimits = DefaultLoginLimits()
	}
	if l := cfg.LoginLimits; l.PerUsername <= 0 || l.PerAddress <= 0 || l.UserBurst < 1 || l.AddressBurst < 1 || l.MaxKeys < 1 {
		errs = append(errs, fmt.Errorf("api: login limits %+v must all be positive", l))
	}
	if cfg.Policies == nil {
		cfg.Policies = DefaultPolicies()
	}
	if err := cfg.Care.check(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Reactions.check(); err != nil {
		errs = append(errs, err)
	}
	tokens, err := NewTokens(cfg.Tokens)
	if err != nil {
		errs = append(errs, fmt.Errorf("api: %w", err))
	}
	if cfg.OIDC.Enabled() {
		cfg.OIDC.setDefaults()
		if cfg.OIDC.Clock == nil {
			cfg.OIDC.Clock = cfg.Clock
		}
		if err := cfg.OIDC.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("api: %w", err))
		}
		if cfg.OIDC.Issuer == cfg.Tokens.Issuer {
			errs = append(errs, errors.New("api: the OIDC issuer must differ from careflow's own token issuer"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	org, err := newOrgRoutes(&cfg) // before the auth routes: it may fill in cfg.Memberships
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}

	rt := NewRouter(cfg.Policies, tokens, cfg.Logger)
	if cfg.OIDC.Enabled() {
		rt.external = newExternalTokens(cfg.OIDC, cfg.Accounts, cfg.Memberships, cfg.Logger)
	}
	gate := newSessionGate(cfg.SessionEnds, cfg.Clock)
	rt.sessions = gate
	Health{Store: cfg.Store, Projections: cfg.Projections, Logger: cfg.Logger}.Routes(rt)
	rt.HandleFunc("GET /openapi.yaml", serveOpenAPI)
	rt.HandleFunc("GET /metrics", cfg.Metrics.serve)
	limiter := newLoginLimiter(cfg.LoginLimits)
	auth := &authRoutes{
		accounts: cfg.Accounts, tokens: tokens, refresh: cfg.Refresh, members: cfg.Memberships,
		limiter: limiter, refreshTTL: cfg.RefreshTTL, clock: cfg.Clock,
	}
	auth.register(rt)
	(&accountRoutes{accounts: cfg.Accounts, refresh: cfg.Refresh, limiter: limiter, clock: cfg.Clock}).register(rt)
	(&sessionRoutes{gate: gate, refresh: cfg.Refresh}).register(rt)
	org.register(rt)
	org.registerEmergencyAccess(rt)
	registerCareRoutes(rt, cfg.Care, cfg.Store, cfg.Clock)
	registerReactionRoutes(rt, cfg.Reactions, cfg.Organization, cfg.Clock)

	var h http.Handler = withMetrics(cfg.Metrics, cfg.Clock, rt)
	h = withSecurityHeaders(cfg.BehindTLSProxy, h)
	h = withRecoverer(h)
	h = withAccessLog(cfg.Clock, h)
	h = withRequestID(cfg.NewRequestID, cfg.Logger, h)
	return &Server{handler: h, router: rt}, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Routes lists every registered route with its policy.
func (s *Server) Routes() []Route { return s.router.Routes() }
