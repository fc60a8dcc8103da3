package routing

import "github.com/portico/portico/internal/siteopts"

// accessOptions reads the access and limit labels (portico.allow,
// auth-file, max-body, timeout, connect-timeout, rate, rate-burst). Each
// bad value is an error naming its label and value; values are not trimmed
// but for the items of portico.allow. portico.rate-burst without
// portico.rate is an error (it would silently do nothing).
func (p *parser) accessOptions() siteopts.Access {
	a := siteopts.Access{Burst: -1}
	if s := p.lookup(label(LabelAllow)); s.ok {
		v, err := siteopts.ParseAllow(s.value)
		p.check(s, err)
		a.Allow = v
	}
	if s := p.lookup(label(LabelAuthFile)); s.ok {
		v, err := siteopts.ParseAuthFile(s.value)
		p.check(s, err)
		a.AuthFile = v
	}
	if s := p.lookup(label(LabelMaxBody)); s.ok {
		v, err := siteopts.ParseSize(s.value)
		p.check(s, err)
		a.MaxBody = v
	}
	if s := p.lookup(label(LabelTimeout)); s.ok {
		v, err := siteopts.ParseTime(s.value)
		p.check(s, err)
		a.Timeout = v
	}
	if s := p.lookup(label(LabelConnectTimeout)); s.ok {
		v, err := siteopts.ParseTime(s.value)
		p.check(s, err)
		a.ConnectTimeout = v
	}
	rate := p.lookup(label(LabelRate))
	if rate.ok {
		v, err := siteopts.ParseRate(rate.value)
		p.check(rate, err)
		a.Rate = v
	}
	if s := p.lookup(label(LabelRateBurst)); s.ok {
		v, err := siteopts.ParseBurst(s.value)
		p.check(s, err)
		if err == nil && !rate.ok {
			p.add(SeverityError, s.key, s.value, "needs %s: a burst is counted above a rate", LabelRate)
		}
		a.Burst = v
	}
	if a.Rate.N == 0 {
		a.Burst = 0
	}
	return a
}

// check adds err, if any, as the error of setting s.
func (p *parser) check(s setting, err error) {
	if err != nil {
		p.add(SeverityError, s.key, s.value, "%v", err)
	}
}
