package porticotest

// LogLen is how many bytes the process has logged so far.
func (p *Proc) LogLen() int { return len(p.log.String()) }
