package graphemu

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
)

// Paging limits of directory collections.
const (
	defaultPageSize = 100
	maxPageSize     = 999
)

// listQuery is a parsed collection request.
type listQuery struct {
	filter   predicate  // nil: everything
	hint     *indexHint // what an index can narrow the filter to; nil: scan
	sel      []string   // nil: every property
	top      int
	after    int64 // $skiptoken: the sequence number of the last item already returned
	count    bool
	eventual bool
}

// parseListQuery reads the OData options Graph's directory supports on collections.
func parseListQuery(r *http.Request, sch *schema) (listQuery, *reply) {
	q := r.URL.Query()
	lq := listQuery{top: defaultPageSize, eventual: strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual")}
	for _, unsupported := range []string{"$orderby", "$search", "$expand"} {
		if q.Has(unsupported) {
			rep := fail(http.StatusBadRequest, "Request_UnsupportedQuery", "The emulator does not support %s.", unsupported)
			return lq, &rep
		}
	}
	if q.Has("$skip") {
		rep := fail(http.StatusBadRequest, "Request_BadRequest", "'$skip' is not supported by the service.")
		return lq, &rep
	}
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			rep := errBadRequest("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", v, maxPageSize)
			return lq, &rep
		}
		lq.top = n
	}
	if v := q.Get("$count"); v != "" {
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			rep := fail(http.StatusBadRequest, "BadRequest", "Invalid value '%s' for $count query option found. Valid values are 'true' or 'false'.", v)
			return lq, &rep
		}
		lq.count = strings.EqualFold(v, "true")
		if lq.count && !lq.eventual {
			rep := fail(http.StatusBadRequest, "Request_UnsupportedQuery", "$count is not supported because the 'ConsistencyLevel:eventual' header is missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information")
			return lq, &rep
		}
	}
	if v := q.Get("$skiptoken"); v != "" {
		n, ok := decodeSkipToken(v)
		if !ok {
			rep := errBadRequest("Invalid paging token specified.")
			return lq, &rep
		}
		lq.after = n
	}
	if v := q.Get("$select"); v != "" {
		sel, rep := parseSelect(v, sch)
		if rep != nil {
			return lq, rep
		}
		lq.sel = sel
	}
	if v := q.Get("$filter"); v != "" {
		p, hint, err := parseFilter(v, sch, lq.eventual)
		if err != nil {
			return lq, err
		}
		lq.filter, lq.hint = p, hint
	}
	return lq, nil
}

// parseSelect maps $select names to the schema's spelling, in schema order.
func parseSelect(v string, sch *schema) ([]string, *reply) {
	want := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		p := sch.lookup(name)
		if p == nil {
			rep := fail(http.StatusBadRequest, "BadRequest", "Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.%s'.", name, sch.typeName)
			return nil, &rep
		}
		want[p.name] = true
	}
	var sel []string
	for _, p := range sch.props {
		if want[p.name] {
			sel = append(sel, p.name)
		}
	}
	return sel, nil
}

// Skip tokens are opaque to clients; ours name the last sequence number served, so a page never
// repeats or skips an object even when others are created or deleted between requests.
func encodeSkipToken(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("azemu:" + strconv.FormatInt(seq, 10)))
}

func decodeSkipToken(tok string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(string(b), "azemu:"), 10, 64)
	return n, err == nil && strings.HasPrefix(string(b), "azemu:")
}

// predicate tests an object's properties.
type predicate func(props map[string]json.RawMessage) bool

// indexHint is one equality every match of a filter must satisfy: prop eq value, or, for a
// string collection, prop/any(x:x eq value). A collection with an index on prop looks up its
// candidates instead of testing every object.
type indexHint struct {
	prop  string // as the schema spells it
	value string
}

// parseFilter compiles the $filter subset Graph's directory serves: eq, in, startswith, any() on
// string collections, and/or, parentheses; ne, not and endswith only with ConsistencyLevel:
// eventual, as Graph requires. The hint is an equality every match satisfies, when the filter
// has one: a filter without or and not is a conjunction, so any equality in it will do.
func parseFilter(src string, sch *schema, eventual bool) (predicate, *indexHint, *reply) {
	toks, err := lexFilter(src)
	if err != nil {
		rep := fail(http.StatusBadRequest, "BadRequest", "Invalid filter clause: %s", err.Error())
		return nil, nil, &rep
	}
	p := &filterParser{src: src, toks: toks, sch: sch, eventual: eventual}
	pred := p.or()
	if p.rep == nil && p.pos < len(p.toks) {
		p.syntax("unexpected '%s'", p.toks[p.pos].text)
	}
	if p.rep != nil {
		return nil, nil, p.rep
	}
	if p.disjunct {
		return pred, nil, nil
	}
	return pred, p.hint, nil
}

type tokKind uint8

const (
	tIdent tokKind = iota
	tString
	tLParen
	tRParen
	tComma
	tColon
)

type filterTok struct {
	kind tokKind
	text string // identifier, or the unquoted literal
	pos  int
}

func lexFilter(src string) ([]filterTok, error) {
	var toks []filterTok
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(':
			toks = append(toks, filterTok{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, filterTok{tRParen, ")", i})
			i++
		case c == ',':
			toks = append(toks, filterTok{tComma, ",", i})
			i++
		case c == ':':
			toks = append(toks, filterTok{tColon, ":", i})
			i++
		case c == '\'':
			j := i + 1
			var b strings.Builder
			for {
				if j >= len(src) {
					return nil, fmt.Errorf("unterminated string literal at position %d in '%s'", i, src)
				}
				if src[j] == '\'' {
					if j+1 < len(src) && src[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(src[j])
				j++
			}
			toks = append(toks, filterTok{tString, b.String(), i})
			i = j + 1
		case c < 0x80 && (unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)) || c == '_' || c == '/' || c == '.' || c == '-'):
			j := i
			for j < len(src) && src[j] < 0x80 && (unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j])) || strings.IndexByte("_/.-", src[j]) >= 0) {
				j++
			}
			toks = append(toks, filterTok{tIdent, src[i:j], i})
			i = j
		default:
			return nil, fmt.Errorf("syntax error at position %d in '%s'", i, src)
		}
	}
	return toks, nil
}

type filterParser struct {
	src      string
	toks     []filterTok
	pos      int
	sch      *schema
	eventual bool
	rep      *reply     // the first error
	hint     *indexHint // the first equality seen
	disjunct bool       // an or or a not: an equality is not necessarily true of every match
}

// equality records an equality the filter demands, for the index.
func (p *filterParser) equality(prop, value string) {
	if p.hint == nil {
		p.hint = &indexHint{prop: prop, value: value}
	}
}

func (p *filterParser) syntax(format string, args ...any) predicate {
	if p.rep == nil {
		rep := fail(http.StatusBadRequest, "BadRequest", "Invalid filter clause: %s", fmt.Sprintf(format, args...))
		p.rep = &rep
	}
	return nil
}

func (p *filterParser) unsupported(format string, args ...any) predicate {
	if p.rep == nil {
		rep := fail(http.StatusBadRequest, "Request_UnsupportedQuery", format, args...)
		p.rep = &rep
	}
	return nil
}

func (p *filterParser) needEventual(op string) bool {
	if p.eventual {
		return true
	}
	p.unsupported("Operator '%s' is not supported because the 'ConsistencyLevel:eventual' header is missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information", op)
	return false
}

func (p *filterParser) peek() (filterTok, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return filterTok{}, false
}

func (p *filterParser) keyword(word string) bool {
	if t, ok := p.peek(); ok && t.kind == tIdent && strings.EqualFold(t.text, word) {
		p.pos++
		return true
	}
	return false
}

func (p *filterParser) expect(k tokKind, what string) (filterTok, bool) {
	t, ok := p.peek()
	if !ok || t.kind != k {
		p.syntax("expected %s at position %d in '%s'", what, p.here(), p.src)
		return t, false
	}
	p.pos++
	return t, true
}

func (p *filterParser) here() int {
	if t, ok := p.peek(); ok {
		return t.pos
	}
	return len(p.src)
}

func (p *filterParser) or() predicate {
	left := p.and()
	for p.rep == nil && p.keyword("or") {
		p.disjunct = true
		right := p.and()
		l, r := left, right
		left = func(o map[string]json.RawMessage) bool { return l(o) || r(o) }
	}
	return left
}

func (p *filterParser) and() predicate {
	left := p.unary()
	for p.rep == nil && p.keyword("and") {
		right := p.unary()
		l, r := left, right
		left = func(o map[string]json.RawMessage) bool { return l(o) && r(o) }
	}
	return left
}

func (p *filterParser) unary() predicate {
	if p.rep != nil {
		return nil
	}
	if p.keyword("not") {
		p.disjunct = true
		if !p.needEventual("not") {
			return nil
		}
		inner := p.unary()
		return func(o map[string]json.RawMessage) bool { return !inner(o) }
	}
	return p.primary()
}

func (p *filterParser) primary() predicate {
	t, ok := p.peek()
	if !ok {
		return p.syntax("unexpected end of expression in '%s'", p.src)
	}
	if t.kind == tLParen {
		p.pos++
		inner := p.or()
		if _, ok := p.expect(tRParen, "')'"); !ok {
			return nil
		}
		return inner
	}
	if t.kind != tIdent {
		return p.syntax("syntax error at position %d in '%s'", t.pos, p.src)
	}
	p.pos++
	lower := strings.ToLower(t.text)
	if lower == "startswith" || lower == "endswith" {
		return p.stringFunc(lower)
	}
	if path, ok := strings.CutSuffix(lower, "/any"); ok {
		return p.lambda(t.text[:len(path)])
	}
	return p.comparison(t.text)
}

// property resolves a filter operand to a schema property that supports ops.
func (p *filterParser) property(name string, ops filterOps) *prop {
	pr := p.sch.lookup(name)
	if pr == nil || pr.filter&ops == 0 {
		p.unsupported("Unsupported or invalid query filter clause specified for property '%s' of resource '%s'.", name, p.sch.resource)
		return nil
	}
	return pr
}

func (p *filterParser) stringFunc(fn string) predicate {
	if fn == "endswith" && !p.needEventual("endsWith") {
		return nil
	}
	if _, ok := p.expect(tLParen, "'('"); !ok {
		return nil
	}
	name, ok := p.expect(tIdent, "a property name")
	if !ok {
		return nil
	}
	if _, ok := p.expect(tComma, "','"); !ok {
		return nil
	}
	lit, ok := p.expect(tString, "a string literal")
	if !ok {
		return nil
	}
	if _, ok := p.expect(tRParen, "')'"); !ok {
		return nil
	}
	pr := p.property(name.text, filterStartsWith)
	if pr == nil {
		return nil
	}
	want := strings.ToLower(lit.text)
	return func(o map[string]json.RawMessage) bool {
		v := strings.ToLower(str(o, pr.name))
		if fn == "endswith" {
			return strings.HasSuffix(v, want)
		}
		return strings.HasPrefix(v, want)
	}
}

// lambda parses "<collection>/any(x: x eq 'v')" and "any(x: startswith(x, 'v'))".
func (p *filterParser) lambda(path string) predicate {
	if _, ok := p.expect(tLParen, "'('"); !ok {
		return nil
	}
	v, ok := p.expect(tIdent, "a range variable")
	if !ok {
		return nil
	}
	if _, ok := p.expect(tColon, "':'"); !ok {
		return nil
	}
	pr := p.property(path, filterAny)
	if pr == nil {
		return nil
	}
	var match func(string) bool
	if p.keyword("startswith") {
		if _, ok := p.expect(tLParen, "'('"); !ok {
			return nil
		}
		if t, ok := p.expect(tIdent, "the range variable"); !ok || t.text != v.text {
			return p.syntax("expected range variable '%s' in '%s'", v.text, p.src)
		}
		p.expect(tComma, "','")
		lit, ok := p.expect(tString, "a string literal")
		if !ok {
			return nil
		}
		p.expect(tRParen, "')'")
		want := strings.ToLower(lit.text)
		match = func(s string) bool { return strings.HasPrefix(strings.ToLower(s), want) }
	} else {
		if t, ok := p.expect(tIdent, "the range variable"); !ok || t.text != v.text {
			return p.syntax("expected range variable '%s' in '%s'", v.text, p.src)
		}
		if !p.keyword("eq") {
			return p.syntax("only eq and startswith are supported inside any() in '%s'", p.src)
		}
		lit, ok := p.expect(tString, "a string literal")
		if !ok {
			return nil
		}
		match = func(s string) bool { return strings.EqualFold(s, lit.text) }
		p.equality(pr.name, lit.text)
	}
	if _, ok := p.expect(tRParen, "')'"); !ok {
		return nil
	}
	return func(o map[string]json.RawMessage) bool {
		for _, s := range strs(o, pr.name) {
			if match(s) {
				return true
			}
		}
		return false
	}
}

func (p *filterParser) comparison(name string) predicate {
	op, ok := p.expect(tIdent, "an operator")
	if !ok {
		return nil
	}
	pr := p.property(name, filterEq)
	if pr == nil {
		return nil
	}
	switch strings.ToLower(op.text) {
	case "eq", "ne":
		negate := strings.EqualFold(op.text, "ne")
		if negate && !p.needEventual("ne") {
			return nil
		}
		lit, _ := p.peek()
		match, ok := p.literal()
		if !ok {
			return nil
		}
		if !negate && lit.kind == tString {
			p.equality(pr.name, lit.text)
		}
		return func(o map[string]json.RawMessage) bool { return match(o[pr.name]) != negate }
	case "in":
		if _, ok := p.expect(tLParen, "'('"); !ok {
			return nil
		}
		var matches []func(json.RawMessage) bool
		for {
			m, ok := p.literal()
			if !ok {
				return nil
			}
			matches = append(matches, m)
			if t, ok := p.peek(); ok && t.kind == tComma {
				p.pos++
				continue
			}
			break
		}
		if _, ok := p.expect(tRParen, "')'"); !ok {
			return nil
		}
		return func(o map[string]json.RawMessage) bool {
			for _, m := range matches {
				if m(o[pr.name]) {
					return true
				}
			}
			return false
		}
	}
	return p.unsupported("Operator '%s' is not supported by the emulator for property '%s'.", op.text, name)
}

// literal reads a string, true, false or null and returns a matcher for a stored value.
// Directory string comparisons ignore case.
func (p *filterParser) literal() (func(json.RawMessage) bool, bool) {
	t, ok := p.peek()
	if !ok {
		p.syntax("expected a literal at the end of '%s'", p.src)
		return nil, false
	}
	p.pos++
	switch {
	case t.kind == tString:
		return func(v json.RawMessage) bool {
			var s string
			return json.Unmarshal(v, &s) == nil && strings.EqualFold(s, t.text)
		}, true
	case t.kind == tIdent && (t.text == "true" || t.text == "false" || t.text == "null"):
		return func(v json.RawMessage) bool { return string(compact(v)) == t.text || (t.text == "null" && v == nil) }, true
	}
	p.syntax("expected a literal at position %d in '%s'", t.pos, p.src)
	return nil, false
}
