// Package emulator is the local Lambda execution environment behind lambda-emulator: it runs a
// function runtime and its extensions and speaks the Runtime, Extensions, Telemetry and Logs
// APIs to them. It holds no code yet.
package emulator
