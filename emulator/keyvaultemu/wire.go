package keyvaultemu

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits the service enforces on secrets (learn.microsoft.com "About secrets" and "Service limits").
const (
	maxValueBytes       = 25 * 1024
	maxContentTypeChars = 255
	maxTags             = 15
	maxTagChars         = 512
	maxPageSize         = 25
	// maxBodyBytes bounds what is read at all; a legal set request is far smaller.
	maxBodyBytes = 1 << 20
)

var nameRE = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

// attributesOut is the attributes object in the order the service writes it.
type attributesOut struct {
	Enabled         bool   `json:"enabled"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
}

// bundleOut covers SecretBundle, SecretItem, DeletedSecretBundle and DeletedSecretItem: they differ
// only in which fields are present, and the deleted fields lead as they do on the wire.
type bundleOut struct {
	RecoveryID         string            `json:"recoveryId,omitempty"`
	DeletedDate        *int64            `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64            `json:"scheduledPurgeDate,omitempty"`
	Value              *string           `json:"value,omitempty"`
	ContentType        string            `json:"contentType,omitempty"`
	ID                 string            `json:"id"`
	Attributes         attributesOut     `json:"attributes"`
	Tags               map[string]string `json:"tags,omitempty"`
}

// listOut is one page; nextLink is null on the last page, never absent.
type listOut struct {
	Value    []bundleOut `json:"value"`
	NextLink *string     `json:"nextLink"`
}

type attributesIn struct {
	Enabled   *bool  `json:"enabled"`
	NotBefore *int64 `json:"nbf"`
	Expires   *int64 `json:"exp"`
}

type setIn struct {
	Value       *string           `json:"value"`
	ContentType *string           `json:"contentType"`
	Attributes  *attributesIn     `json:"attributes"`
	Tags        map[string]string `json:"tags"`
}

type updateIn struct {
	ContentType *string           `json:"contentType"`
	Attributes  *attributesIn     `json:"attributes"`
	Tags        map[string]string `json:"tags"`
}

type blobIn struct {
	Value *string `json:"value"`
}

func checkName(name string) *apiError {
	if !nameRE.MatchString(name) {
		return badParameter("The request URI contains an invalid name: " + name)
	}
	return nil
}

// decodeBody reads a JSON body. Its errors never quote the body: it may hold a secret value.
func decodeBody(r *http.Request, v any) *apiError {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return badParameter("The request body could not be read.")
	}
	if len(b) > maxBodyBytes {
		return badParameter(fmt.Sprintf("The request body is larger than %d bytes.", maxBodyBytes))
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return badParameter("The request body is missing.")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badParameter("The request body is not valid JSON for this operation.")
	}
	return nil
}

// checkMetadata enforces the limits shared by set and update.
func checkMetadata(contentType *string, tags map[string]string) *apiError {
	if contentType != nil && utf8.RuneCountInString(*contentType) > maxContentTypeChars {
		return badParameter(fmt.Sprintf("The contentType is longer than %d characters.", maxContentTypeChars))
	}
	if len(tags) > maxTags {
		return badParameter(fmt.Sprintf("A secret can have at most %d tags; the request has %d.", maxTags, len(tags)))
	}
	for k, v := range tags {
		if utf8.RuneCountInString(k) > maxTagChars {
			return badParameter(fmt.Sprintf("Tag names are limited to %d characters.", maxTagChars))
		}
		if utf8.RuneCountInString(v) > maxTagChars {
			return badParameter(fmt.Sprintf("The value of tag %q is longer than %d characters.", k, maxTagChars))
		}
	}
	return nil
}

func (a *attributesIn) apply(v *version) {
	if a == nil {
		return
	}
	if a.Enabled != nil {
		v.enabled = *a.Enabled
	}
	if a.NotBefore != nil {
		n := *a.NotBefore
		v.nbf = &n
	}
	if a.Expires != nil {
		e := *a.Expires
		v.exp = &e
	}
}

// page is a list request's window: up to max items whose keys sort after `after`.
type page struct {
	max   int
	after string
}

type skipToken struct {
	NextMarker     string `json:"NextMarker"`
	TargetLocation int    `json:"TargetLocation"`
}

func parsePage(r *http.Request) (page, *apiError) {
	p := page{max: maxPageSize}
	q := r.URL.Query()
	if m := q.Get("maxresults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 {
			return p, badParameter("invalid maxresults: " + m)
		}
		p.max = min(n, maxPageSize)
	}
	if t := q.Get("$skiptoken"); t != "" {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(t, "="))
		var st skipToken
		if err != nil || json.Unmarshal(raw, &st) != nil || st.NextMarker == "" {
			return p, badParameter("invalid $skiptoken")
		}
		p.after = st.NextMarker
	}
	return p, nil
}

// paginate cuts one page out of items sorted by key and links the next one. The link is absolute
// and carries api-version, because azsecrets requests it verbatim.
func paginate(r *http.Request, p page, items []bundleOut, keys []string) listOut {
	start := 0
	for start < len(keys) && keys[start] <= p.after {
		start++
	}
	end := min(start+p.max, len(items))
	out := listOut{Value: append([]bundleOut{}, items[start:end]...)}
	if end < len(items) {
		tok, _ := json.Marshal(skipToken{NextMarker: keys[end-1]})
		link := "https://" + r.Host + r.URL.EscapedPath() +
			"?api-version=" + url.QueryEscape(r.URL.Query().Get("api-version")) +
			"&$skiptoken=" + base64.RawURLEncoding.EncodeToString(tok) +
			"&maxresults=" + strconv.Itoa(p.max)
		out.NextLink = &link
	}
	return out
}
