package admin

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"dicomgate/gateway/store"
)

// metrics are the UI's Prometheus metrics: HTTP requests, and the
// gateway's studies and jobs counted from the store at each scrape.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry, db store.Store) (*metrics, error) {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dicomgate_admin_http_requests_total",
			Help: "HTTP requests to the admin UI by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dicomgate_admin_http_request_duration_seconds",
			Help:    "Time to answer admin UI requests, by method and route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, &storeCollector{db: db}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) middleware(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath() // the pattern, so label values stay bounded
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(c.Writer.Status())).Inc()
	m.duration.WithLabelValues(c.Request.Method, route).Observe(time.Since(start).Seconds())
}

var (
	studiesDesc = prometheus.NewDesc("dicomgate_studies", "Studies by state.", []string{"state"}, nil)
	jobsDesc    = prometheus.NewDesc("dicomgate_jobs", "Durable jobs by kind and state.", []string{"kind", "state"}, nil)
	upDesc      = prometheus.NewDesc("dicomgate_store_up", "Whether the gateway store answered the last scrape.", nil, nil)
)

// storeCollector counts studies and jobs when scraped.
type storeCollector struct{ db store.Store }

func (s *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- studiesDesc
	ch <- jobsDesc
	ch <- upDesc
}

func (s *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	studies, err := s.db.StudyCounts(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	jobs, err := s.db.JobCounts(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	for _, st := range dashboardStates() {
		ch <- prometheus.MustNewConstMetric(studiesDesc, prometheus.GaugeValue, float64(studies[st]), string(st))
	}
	for kind, byState := range jobs {
		for _, js := range []store.JobState{store.JobAvailable, store.JobRunning, store.JobDone, store.JobFailed} {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(byState[js]), kind, string(js))
		}
	}
}
