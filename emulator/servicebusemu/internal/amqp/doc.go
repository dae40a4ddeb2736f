// Package amqp is the AMQP 1.0 type system, frame format and performatives
// that the Service Bus emulator speaks. It is a server-side codec: decoding is
// defensive (every length is checked against the bytes that remain, nesting
// is bounded, errors instead of panics) because its input comes from the
// network, and encoding picks the exact AMQP widths the Azure SDKs assert on.
// Message bodies are not handled here; the emulator uses go-amqp's public
// Message.MarshalBinary and UnmarshalBinary for those.
package amqp
