package rpki

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshd/meshd/rpki/rtr"
)

// Config is the rpki: section: the validator caches meshd asks.
type Config struct {
	// Caches are the RTR caches' host:port (stayrtr, Routinator,
	// rpki-client with an RTR server...). The table is their union.
	Caches []string `yaml:"caches"`
	// Timeout bounds a connect and a query's answer (default 30s).
	Timeout time.Duration `yaml:"timeout"`
}

// Enabled reports whether any cache is configured.
func (c *Config) Enabled() bool { return len(c.Caches) > 0 }

// Validate checks the section.
func (c *Config) Validate() error {
	var errs []error
	for i, a := range c.Caches {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("rpki.caches[%d]: %q is not host:port: %v", i, a, err))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("rpki.timeout: must be >= 0"))
	}
	return errors.Join(errs...)
}

// Manager keeps the table from the caches: one RTR client each.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	Table *Table
	// follow are called with each delta's VRPs that came into the table
	// or left it (Follow).
	follow []func(changed []rtr.VRP, reset bool)

	mu      sync.Mutex
	vrps    *prometheus.GaugeVec
	serial  *prometheus.GaugeVec
	synced  *prometheus.GaugeVec
	updates *prometheus.CounterVec
	total   prometheus.GaugeFunc
}

// NewManager builds the manager and registers its metrics with reg.
func NewManager(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{cfg: cfg, log: log.With(slog.String("part", "rpki")), Table: NewTable(),
		vrps: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshd_rpki_cache_vrps",
			Help: "VRPs each RTR cache gave, as last synchronised."}, []string{"cache"}),
		serial: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshd_rpki_cache_serial",
			Help: "Serial of each RTR cache's last End of Data."}, []string{"cache"}),
		synced: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meshd_rpki_cache_last_sync_seconds",
			Help: "Unix time of each RTR cache's last synchronisation (0: its data expired or never came)."}, []string{"cache"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshd_rpki_cache_updates_total",
			Help: "Responses each RTR cache sent, by kind (reset: a whole set, serial: a delta)."}, []string{"cache", "kind"}),
	}
	m.total = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshd_rpki_vrps",
		Help: "Distinct VRPs in the validation table (the caches' union)."}, func() float64 { return float64(m.Table.Len()) })
	if reg != nil {
		for _, c := range []prometheus.Collector{m.vrps, m.serial, m.synced, m.updates, m.total} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("rpki: metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Follow has f called, from the caches' goroutines, with each delta's
// VRPs that came into the table or left it (the routes they cover are to
// validate again); reset says the delta was a cache's full set. Call it
// before Run.
func (m *Manager) Follow(f func(changed []rtr.VRP, reset bool)) {
	m.follow = append(m.follow, f)
}

// Run runs a client per cache until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, addr := range m.cfg.Caches {
		held := 0
		c := rtr.New(rtr.Config{Addr: addr, Timeout: m.cfg.Timeout}, m.log, func(d rtr.Delta) {
			// One client's deltas come from its goroutine, in order;
			// the table serialises them with the other caches'.
			changed := m.Table.Apply(addr, d)
			kind := "serial"
			if d.Reset {
				kind, held = "reset", 0
			}
			held += len(d.Announced) - len(d.Withdrawn)
			m.updates.WithLabelValues(addr, kind).Inc()
			m.vrps.WithLabelValues(addr).Set(float64(held))
			m.serial.WithLabelValues(addr).Set(float64(d.Serial))
			if d.Reset && len(d.Announced) == 0 {
				m.synced.WithLabelValues(addr).Set(0)
			} else {
				// To the microsecond: a delta's way from the cache to
				// the routes' states is timed against it.
				m.synced.WithLabelValues(addr).Set(float64(time.Now().UnixMicro()) / 1e6)
			}
			if len(changed) > 0 {
				for _, f := range m.follow {
					f(changed, d.Reset)
				}
			}
		})
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(ctx) }()
	}
	wg.Wait()
	return nil
}
