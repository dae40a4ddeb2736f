// Package servicebus is the azservicebus adapter: it implements registrar.Publisher, sending
// outcome events to the events topic and rotation jobs to the rotation queue with the MessageIds
// the design fixes (so Service Bus duplicate detection collapses resends), and it builds the
// Service Bus client the CLI shares, from either an identity-based namespace or a connection
// string. SDK errors become registrar errors here, and no message body is ever logged.
package servicebus
