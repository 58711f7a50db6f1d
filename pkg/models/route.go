package models

import (
	"fmt"

	"github.com/exfilguard/exfilguard/pkg/config"
	"github.com/exfilguard/exfilguard/pkg/event"
)

// NewOwning builds an engine that keeps the entities of the given kinds
// only, among the enabled ones: a scale-out task's engine. The input
// partition's task keeps the kinds that are not repartitioned; the task of
// a repartition topic keeps that topic's kind, and sees only the events
// routed to it.
func NewOwning(cfg *config.Config, emit func(*Detection), kinds []Kind) (*Engine, error) {
	e, err := New(cfg, emit)
	if err != nil {
		return nil, err
	}
	e.owns = [numKinds]bool{}
	for _, k := range kinds {
		if k >= numKinds || !e.kinds[k] {
			return nil, fmt.Errorf("new engine: entity kind %s is not enabled", k)
		}
		e.owns[k] = true
	}
	e.partial = e.owns != e.kinds
	return e, nil
}

// Router names the entity of a kind that an event updates, the same way the
// engine does, so that a repartitioned event reaches the one task that
// keeps that entity.
type Router struct {
	bits4, bits6 int
}

// NewRouter returns the router of cfg's entity keys.
func NewRouter(cfg *config.Config) *Router {
	return &Router{bits4: cfg.Engine.SourceNetBitsV4, bits6: cfg.Engine.SourceNetBitsV6}
}

// Hash returns the identity of the entity of kind k that ev updates; ok is
// false when ev names none (no source address, no credential, ...). It
// allocates nothing.
func (r *Router) Hash(k Kind, ev *event.Event) (h uint64, ok bool) {
	switch k {
	case KindPrincipal:
		if ev.Principal == "" {
			return 0, false
		}
		return keyHash(KindPrincipal, ev.Principal), true
	case KindSourceNet:
		if !ev.SourceIP.IsValid() {
			return 0, false
		}
		bits := r.bits4
		if ev.SourceIP.Is6() {
			bits = r.bits6
		}
		p, err := ev.SourceIP.Prefix(bits)
		if err != nil {
			return 0, false
		}
		return netHash(KindSourceNet, p), true
	case KindSourceIP:
		if !ev.SourceIP.IsValid() {
			return 0, false
		}
		return addrHash(KindSourceIP, ev.SourceIP.WithZone("")), true
	case KindCredential:
		if ev.Credential == "" {
			return 0, false
		}
		return keyHash(KindCredential, ev.Credential), true
	case KindClient:
		if ev.Client == "" {
			return 0, false
		}
		return keyHash(KindClient, ev.Client), true
	}
	return 0, false
}
