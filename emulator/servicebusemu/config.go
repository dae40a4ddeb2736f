package servicebusemu

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Cloud defaults, which differ from the official emulator's (MaxDeliveryCount
// 3, duplicate window 20 s, TTL capped at 1 h): the product is tuned for the
// real service.
const (
	DefaultLockDuration       = time.Minute
	DefaultMaxDeliveryCount   = 10
	DefaultDuplicateWindow    = 10 * time.Minute
	maxLockDuration           = 5 * time.Minute
	defaultCommandQueue       = "app-commands"
	defaultEventsTopic        = "app-registration-events"
	defaultEventsSubscription = "appreg"
)

// Config declares the entities of the namespace.
type Config struct {
	Queues []Queue
	Topics []Topic
}

// EntityProperties are the settings of a queue or subscription. Zero values
// take the cloud defaults (see DefaultLockDuration and friends).
type EntityProperties struct {
	LockDuration                        time.Duration
	MaxDeliveryCount                    int
	DefaultMessageTimeToLive            time.Duration // 0 = never
	RequiresDuplicateDetection          bool
	DuplicateDetectionHistoryTimeWindow time.Duration
	DeadLetteringOnMessageExpiration    bool
	RequiresSession                     bool
}

// Queue is a queue declaration.
type Queue struct {
	Name       string
	Properties EntityProperties
}

// Topic is a topic declaration with its subscriptions.
type Topic struct {
	Name          string
	Properties    EntityProperties // duplicate detection and TTL apply at the topic
	Subscriptions []Subscription
}

// Subscription is a subscription declaration. Without Rules it receives
// every message sent to its topic.
type Subscription struct {
	Name       string
	Properties EntityProperties
	Rules      []Rule
}

// DefaultConfig declares appreg's entities.
func DefaultConfig() *Config {
	c := &Config{}
	// One session per client serialises its commands across every instance.
	c.AddQueue(defaultCommandQueue, EntityProperties{RequiresDuplicateDetection: true, RequiresSession: true})
	// Events carry MessageId <requestId>:<type>, so duplicate detection collapses the resends of
	// a redelivered request, and the day-long window covers the scheduler re-announcing a dead
	// letter; readers peek rather than consume, so events age out instead.
	c.AddTopic(defaultEventsTopic, EntityProperties{
		RequiresDuplicateDetection: true, DuplicateDetectionHistoryTimeWindow: 24 * time.Hour,
		DefaultMessageTimeToLive: 7 * 24 * time.Hour,
	}, defaultEventsSubscription)
	return c
}

// AddQueue declares a queue and returns c for chaining.
func (c *Config) AddQueue(name string, p EntityProperties) *Config {
	c.Queues = append(c.Queues, Queue{Name: name, Properties: p})
	return c
}

// AddTopic declares a topic with subscriptions that share properties p.
func (c *Config) AddTopic(name string, p EntityProperties, subscriptions ...string) *Config {
	t := Topic{Name: name, Properties: p}
	for _, s := range subscriptions {
		t.Subscriptions = append(t.Subscriptions, Subscription{Name: s, Properties: p})
	}
	c.Topics = append(c.Topics, t)
	return c
}

func (p EntityProperties) withDefaults() EntityProperties {
	if p.LockDuration <= 0 {
		p.LockDuration = DefaultLockDuration
	}
	if p.MaxDeliveryCount <= 0 {
		p.MaxDeliveryCount = DefaultMaxDeliveryCount
	}
	if p.RequiresDuplicateDetection && p.DuplicateDetectionHistoryTimeWindow <= 0 {
		p.DuplicateDetectionHistoryTimeWindow = DefaultDuplicateWindow
	}
	return p
}

func (c *Config) validate() error {
	seen := map[string]bool{}
	name := func(n string) error {
		if n == "" || strings.ContainsAny(n, "\\?#") {
			return fmt.Errorf("invalid entity name %q", n)
		}
		k := strings.ToLower(n)
		if seen[k] {
			return fmt.Errorf("entity %q declared twice", n)
		}
		seen[k] = true
		return nil
	}
	for _, q := range c.Queues {
		if err := name(q.Name); err != nil {
			return err
		}
		if q.Properties.LockDuration > maxLockDuration {
			return fmt.Errorf("queue %q: LockDuration %v exceeds %v", q.Name, q.Properties.LockDuration, maxLockDuration)
		}
	}
	for _, t := range c.Topics {
		if err := name(t.Name); err != nil {
			return err
		}
		subs := map[string]bool{}
		for _, s := range t.Subscriptions {
			k := strings.ToLower(s.Name)
			if s.Name == "" || subs[k] {
				return fmt.Errorf("topic %q: invalid or duplicate subscription %q", t.Name, s.Name)
			}
			if _, err := compileRules(s.Rules); err != nil {
				return fmt.Errorf("subscription %s/%s: %w", t.Name, s.Name, err)
			}
			if s.Properties.LockDuration > maxLockDuration {
				return fmt.Errorf("subscription %s/%s: LockDuration %v exceeds %v", t.Name, s.Name, s.Properties.LockDuration, maxLockDuration)
			}
			subs[k] = true
		}
	}
	return nil
}

// The official emulator's Config.json schema, as far as it is emulated.
type jsonConfig struct {
	UserConfig struct {
		Namespaces []struct {
			Name   string
			Queues []struct {
				Name       string
				Properties jsonProperties
			}
			Topics []struct {
				Name          string
				Properties    jsonProperties
				Subscriptions []struct {
					Name       string
					Properties jsonProperties
					Rules      []jsonRule
				}
			}
		}
	}
}

type jsonRule struct {
	Name       string
	Properties struct {
		FilterType        string
		CorrelationFilter *struct {
			CorrelationID    string `json:"CorrelationId"`
			MessageID        string `json:"MessageId"`
			To               string
			ReplyTo          string
			Label            string
			SessionID        string `json:"SessionId"`
			ReplyToSessionID string `json:"ReplyToSessionId"`
			ContentType      string
			Properties       map[string]any
		}
		SQLFilter *struct {
			SQLExpression string `json:"SqlExpression"`
		} `json:"SqlFilter"`
		Action *struct {
			SQLExpression string `json:"SqlExpression"`
		}
	}
}

func (j jsonRule) convert(where string) (Rule, error) {
	r := Rule{Name: j.Name}
	p := j.Properties
	if p.Action != nil && strings.TrimSpace(p.Action.SQLExpression) != "" {
		return r, fmt.Errorf("%s rule %q: rule actions are not emulated", where, j.Name)
	}
	switch strings.ToLower(p.FilterType) {
	case "correlation":
		if p.CorrelationFilter == nil {
			return r, fmt.Errorf("%s rule %q: FilterType Correlation without CorrelationFilter", where, j.Name)
		}
		c := p.CorrelationFilter
		r.Correlation = &CorrelationFilter{CorrelationID: c.CorrelationID, MessageID: c.MessageID, To: c.To,
			ReplyTo: c.ReplyTo, Subject: c.Label, SessionID: c.SessionID, ReplyToSessionID: c.ReplyToSessionID,
			ContentType: c.ContentType, Properties: c.Properties}
	case "sql":
		if p.SQLFilter == nil {
			return r, fmt.Errorf("%s rule %q: FilterType Sql without SqlFilter", where, j.Name)
		}
		r.SQL = p.SQLFilter.SQLExpression
	default:
		return r, fmt.Errorf("%s rule %q: unknown FilterType %q", where, j.Name, p.FilterType)
	}
	return r, nil
}

type jsonProperties struct {
	LockDuration                        string
	MaxDeliveryCount                    int
	DefaultMessageTimeToLive            string
	RequiresDuplicateDetection          bool
	DuplicateDetectionHistoryTimeWindow string
	DeadLetteringOnMessageExpiration    bool
	RequiresSession                     bool
	ForwardTo                           string
	ForwardDeadLetteredMessagesTo       string
}

func (j jsonProperties) convert(where string) (EntityProperties, error) {
	p := EntityProperties{
		MaxDeliveryCount:                 j.MaxDeliveryCount,
		RequiresDuplicateDetection:       j.RequiresDuplicateDetection,
		DeadLetteringOnMessageExpiration: j.DeadLetteringOnMessageExpiration,
		RequiresSession:                  j.RequiresSession,
	}
	if j.ForwardTo != "" || j.ForwardDeadLetteredMessagesTo != "" {
		return p, fmt.Errorf("%s: auto-forwarding is not emulated", where)
	}
	var err error
	if p.LockDuration, err = parseISODuration(j.LockDuration); err != nil {
		return p, fmt.Errorf("%s: LockDuration: %w", where, err)
	}
	if p.DefaultMessageTimeToLive, err = parseISODuration(j.DefaultMessageTimeToLive); err != nil {
		return p, fmt.Errorf("%s: DefaultMessageTimeToLive: %w", where, err)
	}
	if p.DuplicateDetectionHistoryTimeWindow, err = parseISODuration(j.DuplicateDetectionHistoryTimeWindow); err != nil {
		return p, fmt.Errorf("%s: DuplicateDetectionHistoryTimeWindow: %w", where, err)
	}
	return p, nil
}

// LoadConfig reads a configuration in the official emulator's Config.json
// schema (UserConfig.Namespaces[].Queues/Topics/Subscriptions with
// Properties, and subscription Rules with correlation or SQL filters).
// Unset properties take the cloud defaults, not the official emulator's.
// Logging settings are ignored; rule actions and forwarding are refused.
func LoadConfig(r io.Reader) (*Config, error) {
	var j jsonConfig
	dec := json.NewDecoder(r)
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("service bus config: %w", err)
	}
	c := &Config{}
	for _, ns := range j.UserConfig.Namespaces {
		for _, q := range ns.Queues {
			p, err := q.Properties.convert("queue " + q.Name)
			if err != nil {
				return nil, fmt.Errorf("service bus config: %w", err)
			}
			c.Queues = append(c.Queues, Queue{Name: q.Name, Properties: p})
		}
		for _, t := range ns.Topics {
			p, err := t.Properties.convert("topic " + t.Name)
			if err != nil {
				return nil, fmt.Errorf("service bus config: %w", err)
			}
			topic := Topic{Name: t.Name, Properties: p}
			for _, s := range t.Subscriptions {
				sp, err := s.Properties.convert("subscription " + t.Name + "/" + s.Name)
				if err != nil {
					return nil, fmt.Errorf("service bus config: %w", err)
				}
				sub := Subscription{Name: s.Name, Properties: sp}
				for _, jr := range s.Rules {
					r, err := jr.convert("subscription " + t.Name + "/" + s.Name)
					if err != nil {
						return nil, fmt.Errorf("service bus config: %w", err)
					}
					sub.Rules = append(sub.Rules, r)
				}
				topic.Subscriptions = append(topic.Subscriptions, sub)
			}
			c.Topics = append(c.Topics, topic)
		}
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("service bus config: %w", err)
	}
	return c, nil
}

// parseISODuration parses the ISO 8601 durations of Config.json
// ("PT1M", "P1DT2H", "PT0.5S"). An empty string is zero.
func parseISODuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	rest, ok := strings.CutPrefix(strings.ToUpper(s), "P")
	if !ok || rest == "" {
		return 0, fmt.Errorf("invalid ISO 8601 duration %q", s)
	}
	var d time.Duration
	inTime := false
	for rest != "" {
		if rest[0] == 'T' {
			inTime = true
			rest = rest[1:]
			continue
		}
		i := strings.IndexAny(rest, "YMWDHS")
		if i <= 0 {
			return 0, fmt.Errorf("invalid ISO 8601 duration %q", s)
		}
		var f float64
		if _, err := fmt.Sscanf(rest[:i], "%g", &f); err != nil || f < 0 {
			return 0, fmt.Errorf("invalid ISO 8601 duration %q", s)
		}
		var unit time.Duration
		switch u := rest[i]; {
		case u == 'D' && !inTime:
			unit = 24 * time.Hour
		case u == 'W' && !inTime:
			unit = 7 * 24 * time.Hour
		case u == 'H' && inTime:
			unit = time.Hour
		case u == 'M' && inTime:
			unit = time.Minute
		case u == 'S' && inTime:
			unit = time.Second
		default:
			return 0, fmt.Errorf("unsupported unit in ISO 8601 duration %q", s)
		}
		d += time.Duration(f * float64(unit))
		rest = rest[i+1:]
	}
	return d, nil
}
