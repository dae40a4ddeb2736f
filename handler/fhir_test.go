package main

import (
	"net/http"
	"testing"

	"appreg/emulator/armemu"
	"appreg/internal/registrar"
)

// TestE2EFHIRRedeliveredThreeTimes: the same registration message delivered three times, as
// Service Bus redelivers it after a lost lock, leaves one role assignment per (service, role),
// and only the first delivery writes to Resource Manager.
func TestE2EFHIRRedeliveredThreeTimes(t *testing.T) {
	h := newHarness(t, nil)
	body := []byte(`{"requestId":"fhir-redo","clientName":"fhir-redo","fhirAccess":{"roles":["FHIR Data Reader","FHIR Data Exporter"]}}`)
	var sp string
	for delivery := 1; delivery <= 3; delivery++ {
		status, out := h.command("register", body, "fhir-redo", delivery)
		if status != http.StatusOK {
			t.Fatalf("delivery %d = %d %v", delivery, status, out.Logs)
		}
		ev := eventOf(t, out)
		if ev.Type != registrar.EventRegistered || len(ev.FHIRAccess) != 1 || len(ev.FHIRAccess[0].Roles) != 2 {
			t.Fatalf("delivery %d: %+v", delivery, ev)
		}
		sp = ev.ServicePrincipalID
	}
	held := map[string]int{}
	for _, a := range h.emu.ARM.Assignments() {
		if a.PrincipalID == sp {
			held[a.RoleDefinitionID]++
		}
	}
	if len(held) != 2 || held[armemu.RoleFHIRDataReader] != 1 || held[armemu.RoleFHIRDataExporter] != 1 {
		t.Errorf("assignments after three deliveries: %v", held)
	}
	if ops := h.emu.ARM.Stats().Operations; ops[armemu.OpCreateRoleAssignment] != 2 || ops[armemu.OpDeleteRoleAssignment] != 0 {
		t.Errorf("Resource Manager calls %v: want the two PUTs of the first delivery only", ops)
	}
}
