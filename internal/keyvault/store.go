package keyvault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/internal/registrar"
)

var _ registrar.SecretStore = (*Store)(nil)

// Options configure a Store. Nil or the zero value means azcore's defaults.
type Options struct {
	// Transport sends the requests; an *http.Client (for example one trusting a local CA, from
	// azauth.NewHTTPClient) satisfies it. Nil means azcore's default transport.
	Transport policy.Transporter
	// Retry tunes azcore's retry policy, the only retry layer under this adapter. The zero value
	// means azcore's defaults (3 retries of 408/429/5xx and transport errors, from 800 ms).
	Retry policy.RetryOptions
	// Logger receives one debug line per operation (names, versions, durations; never values).
	// Nil discards.
	Logger *slog.Logger
	// Now is the clock used to read HTTP-date Retry-After headers; nil means time.Now.
	Now func() time.Time
}

// Store is a registrar.SecretStore backed by one Key Vault.
type Store struct {
	client *azsecrets.Client
	log    *slog.Logger
	now    func() time.Time
}

// New returns a Store for the vault at vaultURL (https://<name>.vault.azure.net/), authorised by
// cred through Key Vault's challenge protocol.
func New(vaultURL string, cred azcore.TokenCredential, opts *Options) (*Store, error) {
	if cred == nil {
		return nil, errors.New("keyvault: nil credential")
	}
	if opts == nil {
		opts = &Options{}
	}
	u, err := url.Parse(vaultURL)
	if err != nil {
		return nil, fmt.Errorf("keyvault: vault URL: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		// azsecrets sends bearer tokens only over TLS; failing here names the setting at start
		// instead of failing every request later.
		return nil, fmt.Errorf("keyvault: vault URL %q: want https://<vault host>/", vaultURL)
	}
	co := &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{Retry: opts.Retry, Transport: opts.Transport},
		// The challenge names the resource (https://vault.azure.net) a token is requested for, and
		// azsecrets checks that the vault's host lies under it, so a spoofed or misrouted vault
		// cannot make us send it a Key Vault token. A vault on a loopback address is the local
		// emulator, whose host can never match; there, and only there, the check is off. Every
		// real vault, sovereign clouds and private endpoints included, keeps it.
		DisableChallengeResourceVerification: isLoopback(u.Hostname()),
	}
	client, err := azsecrets.NewClient(vaultURL, cred, co)
	if err != nil {
		return nil, fmt.Errorf("keyvault: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{client: client, log: log.With(slog.String("component", "keyvault")), now: now}, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Latest returns the current version's metadata. It asks for the secret with an empty version,
// which is how Key Vault names "latest"; the value comes back with it and is dropped here.
func (s *Store) Latest(ctx context.Context, name string) (registrar.SecretVersion, error) {
	const op = "keyvault.latest"
	if err := checkName(op, name); err != nil {
		return registrar.SecretVersion{}, err
	}
	start := time.Now()
	resp, err := s.client.GetSecret(ctx, name, "", nil)
	resp.Value = nil // the registrar never needs the value back; do not keep a reference to it
	if err != nil {
		err = s.fail(op, name, start, err)
		if isDisabled(err) {
			// Key Vault refuses to read a disabled current version (a deregistered client's), but
			// its metadata is what the caller asks for: the newest version in the listing.
			return s.newestVersion(ctx, name)
		}
		return registrar.SecretVersion{}, err
	}
	v, err := fromSecret(resp.ID, resp.Attributes, resp.Tags)
	if err != nil {
		return registrar.SecretVersion{}, &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: err.Error(), Err: err}
	}
	s.log.DebugContext(ctx, "latest", slog.String("name", name), slog.String("version", v.Version), slog.Duration("took", time.Since(start)))
	return v, nil
}

// newestVersion is the metadata of the most recently created version of name: Key Vault's
// current version.
func (s *Store) newestVersion(ctx context.Context, name string) (registrar.SecretVersion, error) {
	all, err := s.Versions(ctx, name)
	if err != nil {
		return registrar.SecretVersion{}, err
	}
	var newest registrar.SecretVersion
	for _, v := range all {
		if newest.ID == "" || v.Created.After(newest.Created) {
			newest = v
		}
	}
	if newest.ID == "" {
		return newest, &registrar.Error{Code: registrar.CodeNotFound, Op: "keyvault.latest", Message: fmt.Sprintf("secret %q has no versions", name)}
	}
	return newest, nil
}

// isDisabled reports whether Key Vault refused a read because the version is disabled.
func isDisabled(err error) bool {
	var re *azcore.ResponseError
	return registrar.ErrorCode(err) == registrar.CodeConflict && errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

// Versions returns the metadata of every version of name, following the pager to the end.
func (s *Store) Versions(ctx context.Context, name string) ([]registrar.SecretVersion, error) {
	const op = "keyvault.versions"
	if err := checkName(op, name); err != nil {
		return nil, err
	}
	start := time.Now()
	var out []registrar.SecretVersion
	pager := s.client.NewListSecretPropertiesVersionsPager(name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, s.fail(op, name, start, err)
		}
		for _, p := range page.Value {
			if p == nil {
				continue
			}
			v, err := fromSecret(p.ID, p.Attributes, p.Tags)
			if err != nil {
				return nil, &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: err.Error(), Err: err}
			}
			out = append(out, v)
		}
	}
	s.log.DebugContext(ctx, "versions", slog.String("name", name), slog.Int("count", len(out)), slog.Duration("took", time.Since(start)))
	return out, nil
}

// Deleted reports whether name is soft-deleted. Key Vault answers a deleted secret with its last
// value; that copy is dropped at once.
func (s *Store) Deleted(ctx context.Context, name string) (bool, error) {
	const op = "keyvault.getDeleted"
	if err := checkName(op, name); err != nil {
		return false, err
	}
	start := time.Now()
	resp, err := s.client.GetDeletedSecret(ctx, name, nil)
	resp.Value = nil
	if err != nil {
		e := s.fail(op, name, start, err)
		if registrar.IsNotFound(e) {
			return false, nil
		}
		return false, e
	}
	return true, nil
}

// Put stores value as a new version of name. Reveal is called here and nowhere else; the
// response echoes the value, and that copy is dropped before anything else happens.
func (s *Store) Put(ctx context.Context, name string, value registrar.SecretValue, spec registrar.SecretSpec) (registrar.SecretVersion, error) {
	const op = "keyvault.set"
	if err := checkName(op, name); err != nil {
		return registrar.SecretVersion{}, err
	}
	if value.IsZero() {
		return registrar.SecretVersion{}, &registrar.Error{Code: registrar.CodeInvalid, Op: op, Message: fmt.Sprintf("empty value for secret %q", name)}
	}
	text := value.Reveal()
	params := azsecrets.SetSecretParameters{
		Value: &text,
		SecretAttributes: &azsecrets.SecretAttributes{
			Enabled:   ptr(true),
			NotBefore: timePtr(spec.NotBefore),
			Expires:   timePtr(spec.Expires),
		},
		Tags: toTags(spec.Tags),
	}
	if spec.ContentType != "" {
		params.ContentType = &spec.ContentType
	}
	start := time.Now()
	resp, err := s.client.SetSecret(ctx, name, params, nil)
	resp.Value, params.Value, text = nil, nil, ""
	if err != nil {
		return registrar.SecretVersion{}, s.fail(op, name, start, err)
	}
	v, err := fromSecret(resp.ID, resp.Attributes, resp.Tags)
	if err != nil {
		return registrar.SecretVersion{}, &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: err.Error(), Err: err}
	}
	s.log.DebugContext(ctx, "set", slog.String("name", name), slog.String("version", v.Version), slog.Duration("took", time.Since(start)))
	return v, nil
}

// ListManaged calls fn for every secret whose current version is tagged managed-by=appreg. The
// list of secrets carries the current version's attributes and tags but an id without a version,
// so Version is "" and ID is the versionless secret id; Latest resolves the version when needed.
// An error from fn stops the listing and is returned as it is.
func (s *Store) ListManaged(ctx context.Context, fn func(registrar.SecretVersion) error) error {
	const op = "keyvault.list"
	start := time.Now()
	pager := s.client.NewListSecretPropertiesPager(nil)
	seen, kept := 0, 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return s.fail(op, "", start, err)
		}
		for _, p := range page.Value {
			if p == nil {
				continue
			}
			seen++
			if p.Tags[registrar.KVTagManagedBy] == nil || *p.Tags[registrar.KVTagManagedBy] != registrar.KVManagedByValue {
				continue
			}
			v, err := fromSecret(p.ID, p.Attributes, p.Tags)
			if err != nil {
				return &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: err.Error(), Err: err}
			}
			kept++
			if err := fn(v); err != nil {
				return err
			}
		}
	}
	s.log.DebugContext(ctx, "list managed", slog.Int("secrets", seen), slog.Int("managed", kept), slog.Duration("took", time.Since(start)))
	return nil
}

// fail translates err and logs it at debug level; the registrar decides what is worth a warning.
func (s *Store) fail(op, name string, start time.Time, err error) error {
	e := translate(op, name, err, s.now())
	s.log.Debug("key vault call failed", slog.String("op", op), slog.String("name", name),
		slog.String("code", string(registrar.ErrorCode(e))), slog.Duration("took", time.Since(start)), slog.Any("error", e))
	return e
}

func checkName(op, name string) error {
	if validName.MatchString(name) {
		return nil
	}
	return &registrar.Error{Code: registrar.CodeInvalid, Op: op, Message: fmt.Sprintf("invalid secret name %q: want 1-127 of 0-9, a-z, A-Z, -", name)}
}

// fromSecret converts the SDK's pointer-heavy metadata into the registrar's type.
func fromSecret(id *azsecrets.ID, attrs *azsecrets.SecretAttributes, tags map[string]*string) (registrar.SecretVersion, error) {
	if id == nil {
		return registrar.SecretVersion{}, errors.New("key vault returned a secret without an id")
	}
	name, version, err := parseID(string(*id))
	if err != nil {
		return registrar.SecretVersion{}, err
	}
	v := registrar.SecretVersion{Name: name, Version: version, ID: string(*id), Enabled: true}
	if attrs != nil {
		if attrs.Enabled != nil {
			v.Enabled = *attrs.Enabled
		}
		v.Created = timeVal(attrs.Created)
		v.NotBefore = timeVal(attrs.NotBefore)
		v.Expires = timeVal(attrs.Expires)
	}
	if len(tags) > 0 {
		v.Tags = make(map[string]string, len(tags))
		for k, p := range tags {
			if p != nil {
				v.Tags[k] = *p
			}
		}
	}
	return v, nil
}

func toTags(tags map[string]string) map[string]*string {
	if len(tags) == 0 {
		return nil
	}
	out := make(map[string]*string, len(tags))
	for k, v := range tags {
		out[k] = ptr(v)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func timeVal(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// Probe reads the first page of the vault's secret list (metadata only): what proves the
// identity can reach the vault and holds a secrets role. For the preflight check.
func (s *Store) Probe(ctx context.Context) error {
	const op = "keyvault.list"
	pager := s.client.NewListSecretPropertiesPager(nil)
	if _, err := pager.NextPage(ctx); err != nil {
		return translate(op, "", err, s.now())
	}
	return nil
}

// Value returns the latest version's value and metadata. The registrar asks only to prove, with
// the client's own secret, that the client can read what it was granted, and drops the value
// at once.
func (s *Store) Value(ctx context.Context, name string) (registrar.SecretValue, registrar.SecretVersion, error) {
	const op = "keyvault.get"
	if err := checkName(op, name); err != nil {
		return registrar.SecretValue{}, registrar.SecretVersion{}, err
	}
	start := time.Now()
	resp, err := s.client.GetSecret(ctx, name, "", nil)
	if err != nil {
		return registrar.SecretValue{}, registrar.SecretVersion{}, s.fail(op, name, start, err)
	}
	var value registrar.SecretValue
	if resp.Value != nil {
		value = registrar.NewSecretValue(*resp.Value)
	}
	resp.Value = nil
	v, err := fromSecret(resp.ID, resp.Attributes, resp.Tags)
	if err != nil {
		return registrar.SecretValue{}, registrar.SecretVersion{}, &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: err.Error(), Err: err}
	}
	return value, v, nil
}

// Disable disables the latest version of name: Key Vault keeps its value but serves it to no
// one, which is how a deregistered client's last secret stays recoverable for audit.
func (s *Store) Disable(ctx context.Context, name string) error {
	const op = "keyvault.disable"
	if err := checkName(op, name); err != nil {
		return err
	}
	start := time.Now()
	_, err := s.client.UpdateSecretProperties(ctx, name, "", azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: ptr(false)},
	}, nil)
	if err != nil {
		return s.fail(op, name, start, err)
	}
	s.log.DebugContext(ctx, "disabled", slog.String("name", name), slog.Duration("took", time.Since(start)))
	return nil
}
