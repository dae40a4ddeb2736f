package graphemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"appreg/emulator/entraemu"
	"appreg/emulator/internal/token"
)

// benchServer is a Graph emulator holding n managed apps with service principals, as appreg
// leaves them, reached in-process so the figures are the emulator's own cost.
func benchServer(b *testing.B, n int) (*Server, func(method, path, body string) int) {
	b.Helper()
	s, err := NewServer(&Options{NoListener: true, ObjectQuota: -1, WriteQuota: WriteQuota{Writes: -1}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	p := perms{read: true, writeAll: true, caller: "bench"}
	s.mu.Lock()
	for i := range n {
		body := map[string]json.RawMessage{
			"displayName": jsonString(fmt.Sprintf("client %d", i)),
			"tags":        jsonValue([]string{"appreg:managed", fmt.Sprintf("appreg:client:c-%d", i)}),
		}
		a, rep := s.newApplication(p, body, fmt.Sprintf("appreg-c-%d", i))
		if rep != nil {
			b.Fatal(rep.err.Message)
		}
		if _, rep := s.newServicePrincipal(&call{}, p, str(a.props, "appId"), map[string]json.RawMessage{}); rep != nil {
			b.Fatal(rep.err.Message)
		}
	}
	s.mu.Unlock()
	tok, err := s.Issuer().Sign(token.Claims{Audience: entraemu.GraphResource, TenantID: s.TenantID(), AppID: "bench", ObjectID: "bench", Roles: []string{"Application.ReadWrite.All"}})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	do := func(method, path, body string) int {
		r := httptest.NewRequest(method, "https://graph.local"+path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok)
		if method == http.MethodPatch {
			r.Header.Set("Prefer", "create-if-missing")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	return s, do
}

// BenchmarkLookup is the cost of the reads appreg makes, at 10 and at 10,000 apps: with the
// indexes they should cost the same.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 10000} {
		s, do := benchServer(b, n)
		last := n - 1
		s.mu.Lock()
		a, _ := s.apps.lookup("uniqueName", fmt.Sprintf("appreg-c-%d", last))
		s.mu.Unlock()
		id, appID := a.id, str(a.props, "appId")
		reads := []struct{ name, path string }{
			{"uniqueName", "/v1.0/applications(uniqueName='appreg-c-" + fmt.Sprint(last) + "')?$select=id,appId,passwordCredentials"},
			{"appId", "/v1.0/applications(appId='" + appID + "')"},
			{"id", "/v1.0/applications/" + id},
			{"spByAppId", "/v1.0/servicePrincipals(appId='" + appID + "')?$select=id,appId"},
			{"filterAppId", "/v1.0/applications?$filter=appId%20eq%20'" + appID + "'"},
			{"filterTagFirstPage", "/v1.0/applications?$filter=tags/any(t:t%20eq%20'appreg:managed')&$top=100&$select=id,appId,tags"},
			{"filterClientTag", "/v1.0/applications?$filter=tags/any(t:t%20eq%20'appreg:client:c-" + fmt.Sprint(last) + "')"},
		}
		for _, rd := range reads {
			b.Run(fmt.Sprintf("apps=%d/%s", n, rd.name), func(b *testing.B) {
				for b.Loop() {
					if code := do("GET", rd.path, ""); code != http.StatusOK {
						b.Fatalf("%s: %d", rd.path, code)
					}
				}
			})
		}
	}
}

// BenchmarkRegistration is one new registration's Graph requests as appreg makes them (read by
// uniqueName, upsert the app, upsert its service principal, add a password), at 10 and at
// 10,000 apps. Each new app is purged again untimed, so the directory stays at its size.
func BenchmarkRegistration(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			s, do := benchServer(b, n)
			i := 0
			for b.Loop() {
				i++
				name := fmt.Sprintf("appreg-new-%d", i)
				if code := do("GET", "/v1.0/applications(uniqueName='"+name+"')", ""); code != http.StatusNotFound {
					b.Fatalf("find: %d", code)
				}
				if code := do("PATCH", "/v1.0/applications(uniqueName='"+name+"')", `{"displayName":"new","signInAudience":"AzureADMyOrg","tags":["appreg:managed"]}`); code != http.StatusCreated {
					b.Fatalf("upsert: %d", code)
				}
				b.StopTimer()
				s.mu.Lock()
				a, _ := s.apps.lookup("uniqueName", name)
				s.mu.Unlock()
				b.StartTimer()
				if code := do("PATCH", "/v1.0/servicePrincipals(appId='"+str(a.props, "appId")+"')", `{}`); code != http.StatusCreated {
					b.Fatalf("sp: %d", code)
				}
				if code := do("POST", "/v1.0/applications/"+a.id+"/addPassword", `{"passwordCredential":{"displayName":"appreg"}}`); code != http.StatusOK {
					b.Fatalf("addPassword: %d", code)
				}
				b.StopTimer()
				s.mu.Lock()
				sp, _ := s.sps.lookup("appId", str(a.props, "appId"))
				s.softDelete(&a.object)
				s.softDelete(&sp.object)
				s.purge(a.id)
				s.purge(sp.id)
				s.mu.Unlock()
				b.StartTimer()
			}
		})
	}
}
