package armemu

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// condition is a parsed ABAC condition (conditionVersion 2.0), the subset role-assignment
// delegation uses: ActionMatches{'…'}, @Request[…] and @Resource[…] attributes compared with
// StringEquals, StringEqualsIgnoreCase or GuidEquals (and their NotEquals), optionally quantified
// with ForAnyOfAnyValues, ForAllOfAnyValues, ForAnyOfAllValues or ForAllOfAllValues; '!' / NOT,
// AND, OR and parentheses.
type condition interface {
	eval(c evalContext) bool
}

// evalContext is what a condition sees: the action asked for and the attributes by source
// ("request", "resource"), attribute names lower-cased.
type evalContext struct {
	action string
	attrs  map[string]map[string][]string
}

type notCond struct{ x condition }
type andCond struct{ l, r condition }
type orCond struct{ l, r condition }
type actionCond struct{ pattern string }
type compareCond struct {
	source, attr string // lower-cased
	quant, op    string // lower-cased; quant "" = ForAnyOfAnyValues
	values       []string
}

func (n notCond) eval(c evalContext) bool    { return !n.x.eval(c) }
func (a andCond) eval(c evalContext) bool    { return a.l.eval(c) && a.r.eval(c) }
func (o orCond) eval(c evalContext) bool     { return o.l.eval(c) || o.r.eval(c) }
func (a actionCond) eval(c evalContext) bool { return actionMatches(a.pattern, c.action) }

// eval compares an attribute's values with the operand's. An attribute the request or resource
// does not carry makes every comparison false: a condition that demands principalType cannot be
// met by a request that leaves it out.
func (k compareCond) eval(c evalContext) bool {
	have := c.attrs[k.source][k.attr]
	if len(have) == 0 {
		return false
	}
	one := func(h, v string) bool {
		switch k.op {
		case "stringequals":
			return h == v
		case "stringequalsignorecase", "guidequals":
			return strings.EqualFold(h, v)
		case "stringnotequals":
			return h != v
		case "stringnotequalsignorecase", "guidnotequals":
			return !strings.EqualFold(h, v)
		}
		return false
	}
	anyOf := func(h string) bool {
		for _, v := range k.values {
			if one(h, v) {
				return true
			}
		}
		return false
	}
	allOf := func(h string) bool {
		for _, v := range k.values {
			if !one(h, v) {
				return false
			}
		}
		return true
	}
	switch k.quant {
	case "", "foranyofanyvalues":
		for _, h := range have {
			if anyOf(h) {
				return true
			}
		}
		return false
	case "forallofanyvalues":
		for _, h := range have {
			if !anyOf(h) {
				return false
			}
		}
		return true
	case "foranyofallvalues":
		for _, h := range have {
			if allOf(h) {
				return true
			}
		}
		return false
	default: // forallofallvalues
		for _, h := range have {
			if !allOf(h) {
				return false
			}
		}
		return true
	}
}

// errCondition marks a condition ARM would not accept.
var errCondition = errors.New("invalid condition")

// parseCondition parses a condition's text.
func parseCondition(text string) (condition, error) {
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &condParser{toks: toks}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("%w: unexpected %q", errCondition, p.toks[p.pos])
	}
	return c, nil
}

type condParser struct {
	toks []string
	pos  int
}

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *condParser) next() string {
	t := p.peek()
	p.pos++
	return t
}

func (p *condParser) expect(t string) error {
	if got := p.next(); got != t {
		return fmt.Errorf("%w: expected %q, found %q", errCondition, t, got)
	}
	return nil
}

func (p *condParser) or() (condition, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "OR") || p.peek() == "||" {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orCond{l, r}
	}
	return l, nil
}

func (p *condParser) and() (condition, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "AND") || p.peek() == "&&" {
		p.next()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = andCond{l, r}
	}
	return l, nil
}

func (p *condParser) unary() (condition, error) {
	switch t := p.peek(); {
	case t == "!" || strings.EqualFold(t, "NOT"):
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notCond{x}, nil
	case t == "(":
		p.next()
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		return x, p.expect(")")
	case strings.EqualFold(t, "ActionMatches"):
		p.next()
		vals, err := p.operand()
		if err != nil {
			return nil, err
		}
		if len(vals) != 1 {
			return nil, fmt.Errorf("%w: ActionMatches takes one action", errCondition)
		}
		return actionCond{vals[0]}, nil
	case t == "@":
		return p.compare()
	case t == "":
		return nil, fmt.Errorf("%w: unexpected end", errCondition)
	}
	return nil, fmt.Errorf("%w: unexpected %q", errCondition, p.peek())
}

func (p *condParser) compare() (condition, error) {
	p.next() // @
	source := strings.ToLower(p.next())
	if source != "request" && source != "resource" {
		return nil, fmt.Errorf("%w: unknown attribute source @%s", errCondition, source)
	}
	if err := p.expect("["); err != nil {
		return nil, err
	}
	attr := strings.ToLower(p.next())
	if err := p.expect("]"); err != nil {
		return nil, err
	}
	quant, op, hasQuant := strings.Cut(strings.ToLower(p.next()), ":")
	if !hasQuant {
		quant, op = "", quant
	}
	switch quant {
	case "", "foranyofanyvalues", "forallofanyvalues", "foranyofallvalues", "forallofallvalues":
	default:
		return nil, fmt.Errorf("%w: unknown quantifier %q", errCondition, quant)
	}
	switch op {
	case "stringequals", "stringequalsignorecase", "guidequals", "stringnotequals", "stringnotequalsignorecase", "guidnotequals":
	default:
		return nil, fmt.Errorf("%w: operator %q is not supported by the emulator", errCondition, op)
	}
	vals, err := p.operand()
	if err != nil {
		return nil, err
	}
	return compareCond{source: source, attr: attr, quant: quant, op: op, values: vals}, nil
}

// operand reads {v, v, …} or a single value.
func (p *condParser) operand() ([]string, error) {
	if p.peek() != "{" {
		v := p.next()
		if v == "" {
			return nil, fmt.Errorf("%w: missing value", errCondition)
		}
		return []string{unquote(v)}, nil
	}
	p.next()
	var vals []string
	for {
		v := p.next()
		switch v {
		case "":
			return nil, fmt.Errorf("%w: unterminated {", errCondition)
		case "}":
			if len(vals) == 0 {
				return nil, fmt.Errorf("%w: empty value set", errCondition)
			}
			return vals, nil
		case ",":
			continue
		}
		vals = append(vals, unquote(v))
	}
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	return v
}

// lex splits a condition into tokens: punctuation, quoted strings, words, and the raw text
// inside [ ] (attribute names contain ':').
func lex(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case unicode.IsSpace(rune(c)):
			i++
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("%w: unterminated [", errCondition)
			}
			toks = append(toks, "[", strings.TrimSpace(s[i+1:i+j]), "]")
			i += j + 1
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("%w: unterminated string", errCondition)
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		case c == '&' || c == '|':
			if i+1 < len(s) && s[i+1] == c {
				toks = append(toks, s[i:i+2])
				i += 2
				continue
			}
			return nil, fmt.Errorf("%w: unexpected %q", errCondition, c)
		case strings.IndexByte("(){}!,@", c) >= 0:
			toks = append(toks, string(c))
			i++
		default:
			j := i
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && strings.IndexByte("(){}[]!,@'&|", s[j]) < 0 {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

// DelegationCondition is Microsoft's "constrain roles and principal types" condition for Role
// Based Access Control Administrator: its holder may assign and remove only the given roles
// (GUIDs), and only for service principals. It is what appreg's identity is given on each FHIR
// service.
func DelegationCondition(roleIDs []string) string {
	set := strings.Join(roleIDs, ", ")
	return "(\n (\n  !(ActionMatches{'" + roleAssignmentsWrite + "'})\n )\n OR\n (\n" +
		"  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {" + set + "}\n  AND\n" +
		"  @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}\n )\n)\nAND\n(\n (\n" +
		"  !(ActionMatches{'" + roleAssignmentsDelete + "'})\n )\n OR\n (\n" +
		"  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {" + set + "}\n  AND\n" +
		"  @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}\n )\n)"
}
