package jinanet

// The Go side of the log callback. A file with //export may only declare C code in its preamble;
// the C trampoline that the library calls (jinanet_log_trampoline) is in log.go.

/*
#include <stdint.h>
*/
import "C"

// jinanetLogEvent runs on a libjina_net runtime thread for each forwarded event; the strings are
// valid only during the call and are copied. No panic may unwind into C.
//
//export jinanetLogEvent
func jinanetLogEvent(level C.uint32_t, target *C.char, message *C.char) {
	defer func() { _ = recover() }()
	logMu.RLock()
	f := logFunc
	logMu.RUnlock()
	if f != nil {
		f(LogLevel(level), C.GoString(target), C.GoString(message))
	}
}
