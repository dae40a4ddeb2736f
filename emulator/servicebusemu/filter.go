package servicebusemu

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	goamqp "github.com/Azure/go-amqp"
)

// Rule is a subscription rule: a correlation filter or a SQL filter. A
// subscription without rules receives every message (the service's $Default
// rule, 1=1); with rules, a message is copied to it when any rule matches.
type Rule struct {
	Name        string
	Correlation *CorrelationFilter
	SQL         string // a SQL filter expression; see doc.go for the subset
}

// CorrelationFilter matches when every field it sets equals the message's.
type CorrelationFilter struct {
	CorrelationID    string
	MessageID        string
	To               string
	ReplyTo          string
	Subject          string // "Label" in Config.json
	SessionID        string
	ReplyToSessionID string
	ContentType      string
	Properties       map[string]any // application properties, by equality
}

// filter is a compiled rule.
type filter interface {
	match(m *goamqp.Message) bool
}

type trueFilter struct{}

func (trueFilter) match(*goamqp.Message) bool { return true }

func compileRules(rules []Rule) (filter, error) {
	if len(rules) == 0 {
		return trueFilter{}, nil
	}
	var any anyFilter
	for _, r := range rules {
		switch {
		case r.Correlation != nil && r.SQL != "":
			return nil, fmt.Errorf("rule %q has both a correlation and a SQL filter", r.Name)
		case r.Correlation != nil:
			any = append(any, correlation{r.Correlation})
		default:
			e, err := parseSQL(r.SQL)
			if err != nil {
				return nil, fmt.Errorf("rule %q: %w", r.Name, err)
			}
			any = append(any, sqlFilter{e})
		}
	}
	return any, nil
}

type anyFilter []filter

func (a anyFilter) match(m *goamqp.Message) bool {
	for _, f := range a {
		if f.match(m) {
			return true
		}
	}
	return false
}

type correlation struct{ f *CorrelationFilter }

func (c correlation) match(m *goamqp.Message) bool {
	f := c.f
	for _, check := range []struct{ want, prop string }{
		{f.CorrelationID, "correlationid"}, {f.MessageID, "messageid"}, {f.To, "to"}, {f.ReplyTo, "replyto"},
		{f.Subject, "label"}, {f.SessionID, "sessionid"}, {f.ReplyToSessionID, "replytosessionid"},
		{f.ContentType, "contenttype"},
	} {
		if check.want != "" && systemProperty(m, check.prop) != check.want {
			return false
		}
	}
	for k, want := range f.Properties {
		got, ok := m.ApplicationProperties[k]
		if !ok || !sqlEqual(normalize(got), normalize(want)) {
			return false
		}
	}
	return true
}

// systemProperty reads a broker property by its SQL name (lower case).
func systemProperty(m *goamqp.Message, name string) any {
	p := m.Properties
	if p == nil {
		return nil
	}
	str := func(s *string) any {
		if s == nil {
			return nil
		}
		return *s
	}
	switch name {
	case "messageid":
		if p.MessageID != nil {
			return fmt.Sprint(p.MessageID)
		}
	case "correlationid":
		if p.CorrelationID != nil {
			return fmt.Sprint(p.CorrelationID)
		}
	case "to":
		return str(p.To)
	case "replyto":
		return str(p.ReplyTo)
	case "label", "subject":
		return str(p.Subject)
	case "sessionid":
		return str(p.GroupID)
	case "replytosessionid":
		return str(p.ReplyToGroupID)
	case "contenttype":
		return str(p.ContentType)
	}
	return nil
}

// ---- SQL filters ----

// sqlExpr evaluates to a value: string, float64, bool or nil (unknown).
type sqlExpr interface {
	eval(m *goamqp.Message) any
}

type sqlFilter struct{ e sqlExpr }

func (s sqlFilter) match(m *goamqp.Message) bool { return s.e.eval(m) == true }

type sqlLiteral struct{ v any }

func (l sqlLiteral) eval(*goamqp.Message) any { return l.v }

type sqlProperty struct {
	system bool
	name   string
}

func (p sqlProperty) eval(m *goamqp.Message) any {
	if p.system {
		return systemProperty(m, strings.ToLower(p.name))
	}
	v, ok := m.ApplicationProperties[p.name]
	if !ok {
		for k, val := range m.ApplicationProperties {
			if strings.EqualFold(k, p.name) {
				v, ok = val, true
				break
			}
		}
	}
	if !ok {
		return nil
	}
	return normalize(v)
}

type sqlExists struct{ p sqlProperty }

func (e sqlExists) eval(m *goamqp.Message) any {
	if e.p.system {
		return systemProperty(m, strings.ToLower(e.p.name)) != nil
	}
	_, ok := m.ApplicationProperties[e.p.name]
	return ok
}

type sqlNot struct{ e sqlExpr }

func (n sqlNot) eval(m *goamqp.Message) any {
	switch v := n.e.eval(m).(type) {
	case bool:
		return !v
	}
	return nil
}

type sqlLogic struct {
	and  bool
	l, r sqlExpr
}

// eval implements SQL's three-valued AND and OR.
func (x sqlLogic) eval(m *goamqp.Message) any {
	l, r := x.l.eval(m), x.r.eval(m)
	lb, lok := l.(bool)
	rb, rok := r.(bool)
	if x.and {
		if (lok && !lb) || (rok && !rb) {
			return false
		}
		if lok && rok {
			return true
		}
		return nil
	}
	if (lok && lb) || (rok && rb) {
		return true
	}
	if lok && rok {
		return false
	}
	return nil
}

type sqlCompare struct {
	op   string
	l, r sqlExpr
}

func (c sqlCompare) eval(m *goamqp.Message) any {
	l, r := c.l.eval(m), c.r.eval(m)
	if l == nil || r == nil {
		return nil
	}
	switch c.op {
	case "=":
		return sqlEqual(l, r)
	case "<>":
		return !sqlEqual(l, r)
	}
	cmp, ok := sqlOrder(l, r)
	if !ok {
		return nil
	}
	switch c.op {
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	}
	return nil
}

type sqlIsNull struct {
	e   sqlExpr
	not bool
}

func (n sqlIsNull) eval(m *goamqp.Message) any { return (n.e.eval(m) == nil) != n.not }

type sqlIn struct {
	e    sqlExpr
	list []any
	not  bool
}

func (in sqlIn) eval(m *goamqp.Message) any {
	v := in.e.eval(m)
	if v == nil {
		return nil
	}
	for _, x := range in.list {
		if sqlEqual(v, x) {
			return !in.not
		}
	}
	return in.not
}

type sqlLike struct {
	e   sqlExpr
	re  *regexp.Regexp
	not bool
}

func (l sqlLike) eval(m *goamqp.Message) any {
	s, ok := l.e.eval(m).(string)
	if !ok {
		return nil
	}
	return l.re.MatchString(s) != l.not
}

// normalize maps AMQP property values onto the SQL types.
func normalize(v any) any {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int8:
		return float64(n)
	case int16:
		return float64(n)
	case int32:
		return float64(n)
	case int64:
		return float64(n)
	case uint8:
		return float64(n)
	case uint16:
		return float64(n)
	case uint32:
		return float64(n)
	case uint64:
		return float64(n)
	case float32:
		return float64(n)
	case goamqp.Symbol:
		return string(n)
	}
	return v
}

func sqlEqual(a, b any) bool {
	switch a.(type) {
	case string, float64, bool:
		return a == b
	}
	return fmt.Sprint(a) == fmt.Sprint(b) // binary, uuid, timestamp: never ==, which can panic
}

func sqlOrder(a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	}
	return 0, false
}

// errSQL reports an expression outside the emulated subset.
var errSQL = errors.New("SQL filter")

type sqlParser struct {
	toks []string
	pos  int
}

// parseSQL compiles a filter expression in the subset of the Service Bus SQL
// filter grammar described in doc.go.
func parseSQL(src string) (sqlExpr, error) {
	toks, err := tokenizeSQL(src)
	if err != nil {
		return nil, err
	}
	p := &sqlParser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("%w %q: unexpected %q", errSQL, src, p.toks[p.pos])
	}
	return e, nil
}

func tokenizeSQL(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("%w %q: unterminated string", errSQL, s)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			toks = append(toks, s[i:j+1])
			i = j + 1
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("%w %q: unterminated [name]", errSQL, s)
			}
			toks = append(toks, s[i:i+j+1])
			i += j + 1
		case strings.ContainsRune("=(),", rune(c)):
			toks = append(toks, string(c))
			i++
		case c == '<' || c == '>' || c == '!':
			if i+1 < len(s) && (s[i+1] == '=' || (c == '<' && s[i+1] == '>')) {
				toks = append(toks, s[i:i+2])
				i += 2
			} else if c == '!' {
				return nil, fmt.Errorf("%w %q: unexpected '!'", errSQL, s)
			} else {
				toks = append(toks, string(c))
				i++
			}
		default:
			j := i
			for j < len(s) && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])) || strings.ContainsRune("._-$:", rune(s[j]))) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("%w %q: unexpected %q", errSQL, s, string(c))
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

func (p *sqlParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *sqlParser) keyword(k string) bool {
	if strings.EqualFold(p.peek(), k) {
		p.pos++
		return true
	}
	return false
}

func (p *sqlParser) expect(t string) error {
	if !p.keyword(t) {
		return fmt.Errorf("%w: expected %q, got %q", errSQL, t, p.peek())
	}
	return nil
}

func (p *sqlParser) or() (sqlExpr, error) {
	l, err := p.and()
	for err == nil && p.keyword("OR") {
		var r sqlExpr
		if r, err = p.and(); err == nil {
			l = sqlLogic{and: false, l: l, r: r}
		}
	}
	return l, err
}

func (p *sqlParser) and() (sqlExpr, error) {
	l, err := p.not()
	for err == nil && p.keyword("AND") {
		var r sqlExpr
		if r, err = p.not(); err == nil {
			l = sqlLogic{and: true, l: l, r: r}
		}
	}
	return l, err
}

func (p *sqlParser) not() (sqlExpr, error) {
	if p.keyword("NOT") {
		e, err := p.not()
		return sqlNot{e}, err
	}
	return p.predicate()
}

func (p *sqlParser) predicate() (sqlExpr, error) {
	if p.keyword("(") {
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		return e, p.expect(")")
	}
	if p.keyword("EXISTS") {
		if err := p.expect("("); err != nil {
			return nil, err
		}
		prop, ok := p.property(p.peek())
		if !ok {
			return nil, fmt.Errorf("%w: EXISTS needs a property, got %q", errSQL, p.peek())
		}
		p.pos++
		return sqlExists{prop}, p.expect(")")
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	switch op := p.peek(); op {
	case "=", "<>", "!=", "<", "<=", ">", ">=":
		p.pos++
		r, err := p.operand()
		if op == "!=" {
			op = "<>"
		}
		return sqlCompare{op: op, l: l, r: r}, err
	}
	if p.keyword("IS") {
		not := p.keyword("NOT")
		return sqlIsNull{e: l, not: not}, p.expect("NULL")
	}
	not := p.keyword("NOT")
	switch {
	case p.keyword("IN"):
		if err := p.expect("("); err != nil {
			return nil, err
		}
		in := sqlIn{e: l, not: not}
		for {
			v, err := p.operand()
			if err != nil {
				return nil, err
			}
			lit, ok := v.(sqlLiteral)
			if !ok {
				return nil, fmt.Errorf("%w: IN lists take constants", errSQL)
			}
			in.list = append(in.list, lit.v)
			if !p.keyword(",") {
				break
			}
		}
		return in, p.expect(")")
	case p.keyword("LIKE"):
		pat, err := p.operand()
		if err != nil {
			return nil, err
		}
		lit, _ := pat.(sqlLiteral)
		s, ok := lit.v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: LIKE takes a string pattern", errSQL)
		}
		esc := ""
		if p.keyword("ESCAPE") {
			e, err := p.operand()
			if err != nil {
				return nil, err
			}
			escLit, _ := e.(sqlLiteral)
			if esc, _ = escLit.v.(string); len(esc) != 1 {
				return nil, fmt.Errorf("%w: ESCAPE takes one character", errSQL)
			}
		}
		return sqlLike{e: l, re: likeRegexp(s, esc), not: not}, nil
	case not:
		return nil, fmt.Errorf("%w: NOT must be followed by IN or LIKE here", errSQL)
	}
	return nil, fmt.Errorf("%w: expected a comparison after %q", errSQL, p.toks[p.pos-1])
}

func likeRegexp(pattern, esc string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^(?s)")
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case esc != "" && c == esc[0] && i+1 < len(pattern):
			i++
			b.WriteString(regexp.QuoteMeta(string(pattern[i])))
		case c == '%':
			b.WriteString(".*")
		case c == '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func (p *sqlParser) operand() (sqlExpr, error) {
	t := p.peek()
	if t == "" {
		return nil, fmt.Errorf("%w: unexpected end of expression", errSQL)
	}
	p.pos++
	switch {
	case t[0] == '\'':
		return sqlLiteral{strings.ReplaceAll(t[1:len(t)-1], "''", "'")}, nil
	case strings.EqualFold(t, "TRUE"):
		return sqlLiteral{true}, nil
	case strings.EqualFold(t, "FALSE"):
		return sqlLiteral{false}, nil
	case strings.EqualFold(t, "NULL"):
		return sqlLiteral{nil}, nil
	case t[0] == '-' || unicode.IsDigit(rune(t[0])):
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: bad number %q", errSQL, t)
		}
		return sqlLiteral{f}, nil
	}
	if prop, ok := p.property(t); ok {
		return prop, nil
	}
	return nil, fmt.Errorf("%w: unexpected %q", errSQL, t)
}

// property parses [sys.|user.]name or a [bracketed name].
func (p *sqlParser) property(t string) (sqlProperty, bool) {
	if strings.HasPrefix(t, "[") {
		return sqlProperty{name: strings.Trim(t, "[]")}, true
	}
	switch strings.ToUpper(t) {
	case "AND", "OR", "NOT", "IS", "IN", "LIKE", "NULL", "TRUE", "FALSE", "EXISTS", "ESCAPE", "":
		return sqlProperty{}, false
	}
	if !unicode.IsLetter(rune(t[0])) && t[0] != '_' && t[0] != '$' {
		return sqlProperty{}, false
	}
	lower := strings.ToLower(t)
	switch {
	case strings.HasPrefix(lower, "sys."):
		return sqlProperty{system: true, name: t[4:]}, true
	case strings.HasPrefix(lower, "user."):
		return sqlProperty{name: t[5:]}, true
	}
	return sqlProperty{name: t}, true
}
