// Package arm is the registrar's Azure Resource Manager adapter: it implements registrar.Access —
// role assignments on FHIR services — with the armauthorization SDK (api-version 2022-04-01),
// and translates ARM's error codes (never its messages, which ARM has changed without a version
// bump) into the registrar's.
package arm
