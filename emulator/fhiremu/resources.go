package fhiremu

import (
	"time"
)

// resource is one stored FHIR resource.
type resource struct {
	typ, id     string
	lastUpdated time.Time
	fields      map[string]any
}

func (r resource) json() map[string]any {
	out := map[string]any{
		"resourceType": r.typ,
		"id":           r.id,
		"meta":         map[string]string{"versionId": "1", "lastUpdated": r.lastUpdated.Format(time.RFC3339Nano)},
	}
	for k, v := range r.fields {
		out[k] = v
	}
	return out
}

// supported reports whether a resource type is one the emulator knows.
func supported(typ string) bool { return typ == "Patient" }

// seeded is when the seed data was written: fixed, so answers are reproducible.
var seeded = time.Date(2026, 1, 5, 9, 30, 0, 0, time.UTC)

// seedPatients are the synthetic patients every service starts with.
func seedPatients() []resource {
	p := func(id, family, given, gender, birth string) resource {
		return resource{typ: "Patient", id: id, lastUpdated: seeded, fields: map[string]any{
			"active":    true,
			"name":      []any{map[string]any{"use": "official", "family": family, "given": []string{given}}},
			"gender":    gender,
			"birthDate": birth,
		}}
	}
	return []resource{
		p("3f1c2a6e-7b0d-4c55-9e21-0a4b5c6d7e81", "Lindqvist", "Maja", "female", "1984-03-12"),
		p("5d8e0b3a-1c2f-4a67-8b90-1e2f3a4b5c62", "Okafor", "Chidi", "male", "1971-11-02"),
		p("9a7b6c5d-4e3f-4210-9f8e-7d6c5b4a3921", "Tanaka", "Yui", "female", "2002-07-28"),
	}
}

// resources returns a service's resources of one type.
func (s *Server) resources(service, typ string) []resource {
	var out []resource
	for _, r := range s.data[service] {
		if r.typ == typ {
			out = append(out, r)
		}
	}
	return out
}
