package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// serviceMetrics are the metrics of one careflow process, in a registry of
// its own (no global state): the event store's append rate and latency,
// the projections' live lag and backlog, and the Go runtime.
type serviceMetrics struct {
	reg           *prometheus.Registry
	appended      prometheus.Counter
	appendLatency prometheus.Histogram
	lag           *prometheus.HistogramVec
}

func newServiceMetrics() *serviceMetrics {
	m := &serviceMetrics{
		reg: prometheus.NewRegistry(),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "careflow_events_appended_total",
			Help: "Events appended to the event store by this process (duplicates of a retried command not counted).",
		}),
		appendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "careflow_append_duration_seconds",
			Help:    "Latency of one Append, from call to durable commit.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "careflow_projection_lag_seconds",
			Help:    "Live lag: time from an event's commit to its projection being updated.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"projection"}),
	}
	m.reg.MustRegister(m.appended, m.appendLatency, m.lag,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveLag implements projections.LagObserver.
func (m *serviceMetrics) ObserveLag(projection string, lag time.Duration) {
	m.lag.WithLabelValues(projection).Observe(lag.Seconds())
}

// watchBacklog exports each projection's backlog (events not yet applied)
// at scrape time.
func (m *serviceMetrics) watchBacklog(r *projections.Runner) {
	desc := prometheus.NewDesc("careflow_projection_backlog_events",
		"Events in the log not yet applied by the projection.", []string{"projection"}, nil)
	m.reg.MustRegister(backlogCollector{desc: desc, runner: r})
}

type backlogCollector struct {
	desc   *prometheus.Desc
	runner *projections.Runner
}

func (c backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.runner.Status(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range st {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(s.LagEvents), s.Name)
	}
}

// measuredStore counts and times appends; everything else passes through.
type measuredStore struct {
	eventstore.Store
	m *serviceMetrics
}

var _ eventstore.BodyReader = measuredStore{}

// ReadAllBodies hands the store's narrower read of the log
// (eventstore.BodyReader) to the projections' runner through the wrapper.
func (s measuredStore) ReadAllBodies(ctx context.Context, afterPosition int64, limit int) ([]eventstore.RecordedEvent, error) {
	if bodies, ok := s.Store.(eventstore.BodyReader); ok {
		return bodies.ReadAllBodies(ctx, afterPosition, limit)
	}
	return s.Store.ReadAll(ctx, afterPosition, limit)
}

func (s measuredStore) Append(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion,
	events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	start := time.Now()
	res, err := s.Store.Append(ctx, stream, expected, events)
	s.m.appendLatency.Observe(time.Since(start).Seconds())
	if err == nil && !res.Duplicate {
		s.m.appended.Add(float64(len(res.Events)))
	}
	return res, err
}
