package gnmiserver

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/meshd/meshd/internal/ops"
)

// Config is the gnmi-server section of meshd's configuration.
type Config struct {
	// Listen is the host:port to serve gNMI on.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files of the server certificate and key.
	TLSCert string `yaml:"tls-cert"`
	TLSKey  string `yaml:"tls-key"`
	// TLSCA, when set, is a PEM file of the CAs client certificates must
	// chain to (mutual TLS).
	TLSCA string `yaml:"tls-ca"`
	// Username and Password, when set, are required on every RPC.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// AllowInsecure permits listening beyond loopback without TLS and
	// credentials; without it such a configuration is refused.
	AllowInsecure bool `yaml:"allow-insecure"`
	// MaxSubscriptionsPerClient caps one client's concurrent Subscribe
	// RPCs (default 64). A client is a source address (with its user name
	// when credentials are on): there is one account, so the name alone
	// would make one cap for every client together.
	MaxSubscriptionsPerClient int `yaml:"max-subscriptions-per-client"`
	// MaxSubscriptions caps the concurrent Subscribe RPCs of all clients
	// together (default 1024; -1: no cap), so that clients from many
	// addresses cannot get round the per-client cap. Each subscription
	// holds a goroutine and a queue of up to queue-size leaves.
	MaxSubscriptions int `yaml:"max-subscriptions"`
	// MaxRecvMsgSize caps a request message, in bytes (default 4 MiB,
	// gRPC's own default).
	MaxRecvMsgSize int `yaml:"max-recv-msg-size"`
	// MaxSendMsgSize caps a response message, in bytes: a notification
	// or GetResponse over it ends its RPC with ResourceExhausted naming
	// the limit, counted in meshd_gnmitarget_limit_refusals_total. 0 (the
	// default) is gRPC's own cap, 2 GiB. Subscriptions' notifications
	// hold at most 512 leaves each; a Get's response holds every node it
	// matched.
	MaxSendMsgSize int `yaml:"max-send-msg-size"`
	// QueueSize is how many distinct leaves a subscriber's queue holds
	// before it is resynchronised instead.
	QueueSize int `yaml:"queue-size"`
	// QueueBytes bounds the memory a subscriber's queue keeps alive (an
	// estimate of the queued changes' writes; default 16 MiB, -1: no
	// bound); past it the subscriber is resynchronised too. A subscriber
	// that stops reading holds at most this much.
	QueueBytes int64 `yaml:"queue-bytes"`
	// MinSampleInterval is the shortest SAMPLE interval served.
	MinSampleInterval time.Duration `yaml:"min-sample-interval"`
}

// Defaults returns the configuration used for keys left out.
func Defaults() Config {
	c := Config{}
	c.SetDefaults()
	return c
}

// SetDefaults fills in keys left out.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:57400"
	}
	if c.MaxSubscriptionsPerClient == 0 {
		c.MaxSubscriptionsPerClient = 64
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = 1024
	}
	if c.MaxRecvMsgSize == 0 {
		c.MaxRecvMsgSize = 4 << 20
	}
	if c.QueueSize == 0 {
		c.QueueSize = 1 << 16
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = 16 << 20
	}
	if c.MinSampleInterval == 0 {
		c.MinSampleInterval = time.Second
	}
}

// Validate checks the configuration; beyond loopback it requires TLS and
// credentials unless allow-insecure is set.
func (c *Config) Validate() error {
	var errs []error
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("gnmi-server.listen: %q is not host:port: %v", c.Listen, err))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("gnmi-server.tls-cert and gnmi-server.tls-key: set both or neither"))
	}
	if c.TLSCA != "" && c.TLSCert == "" {
		errs = append(errs, errors.New("gnmi-server.tls-ca: client certificates need gnmi-server.tls-cert and gnmi-server.tls-key"))
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, errors.New("gnmi-server.username and gnmi-server.password: set both or neither"))
	}
	if c.MaxSubscriptionsPerClient < 0 {
		errs = append(errs, errors.New("gnmi-server.max-subscriptions-per-client: must be >= 0"))
	}
	if c.MaxSubscriptions < -1 {
		errs = append(errs, errors.New("gnmi-server.max-subscriptions: must be >= 0, or -1 for no cap"))
	}
	if c.MaxRecvMsgSize < 0 {
		errs = append(errs, errors.New("gnmi-server.max-recv-msg-size: must be >= 0"))
	}
	if c.MaxSendMsgSize < 0 {
		errs = append(errs, errors.New("gnmi-server.max-send-msg-size: must be >= 0"))
	}
	if c.QueueBytes < -1 {
		errs = append(errs, errors.New("gnmi-server.queue-bytes: must be > 0, or -1 for no bound"))
	}
	if c.QueueSize < 0 {
		errs = append(errs, errors.New("gnmi-server.queue-size: must be > 0"))
	}
	if c.MinSampleInterval < 0 {
		errs = append(errs, errors.New("gnmi-server.min-sample-interval: must be >= 0"))
	}
	if err == nil && !ops.Loopback(host) && !c.AllowInsecure {
		var missing []string
		if c.TLSCert == "" {
			missing = append(missing, "tls-cert", "tls-key")
		}
		if c.Username == "" {
			missing = append(missing, "username", "password")
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("gnmi-server.listen: %q is reachable beyond loopback without TLS and credentials: set gnmi-server.%s, or gnmi-server.allow-insecure: true to accept the risk",
				c.Listen, strings.Join(missing, ", gnmi-server.")))
		}
	}
	return errors.Join(errs...)
}
