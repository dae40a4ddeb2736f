// Package emulator is the root of the local Azure: everything under it stands in for Azure so
// that appreg can be developed and tested offline, and none of it ships. emu is the control plane
// every emulator shares; entraemu, graphemu, keyvaultemu, servicebusemu, armemu (Resource
// Manager's role assignments) and fhiremu (FHIR services) emulate one service each; azemu runs
// them together on one origin; funchost runs the staged app as the Functions host does. The product (handler/, cmd/appreg and what they import) must link nothing from
// here; boundary_test.go holds it to that.
package emulator
