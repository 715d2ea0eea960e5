package media

// Aliases lets media_test check that its alias table covers every alias.
var Aliases = aliases

// DurationBuf is duration with a read buffer of bufSize bytes.
var DurationBuf = duration

// ReadAhead is the size of Duration's read buffer.
const ReadAhead = readAhead
