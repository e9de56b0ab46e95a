package jinanet

/*
#include <stdint.h>
#include <stdbool.h>
#include "jina_net.h"

// Defined in log_export.go (//export).
extern void jinanetLogEvent(uint32_t level, char *target, char *message);

static void jinanet_log_trampoline(void *user_data, uint32_t level, const char *target, const char *message) {
	(void)user_data;
	jinanetLogEvent(level, (char *)target, (char *)message);
}

static jina_net_result jinanet_log_set(bool on, uint32_t max_level) {
	return jina_net_log_set_callback(on ? jinanet_log_trampoline : NULL, NULL, max_level);
}
*/
import "C"

import "sync"

// LogLevel is a log level of the library (jina_net_log_level), most severe first.
type LogLevel uint32

const (
	LogOff   LogLevel = C.JINA_NET_LOG_OFF
	LogError LogLevel = C.JINA_NET_LOG_ERROR
	LogWarn  LogLevel = C.JINA_NET_LOG_WARN
	LogInfo  LogLevel = C.JINA_NET_LOG_INFO
	LogDebug LogLevel = C.JINA_NET_LOG_DEBUG
	LogTrace LogLevel = C.JINA_NET_LOG_TRACE
)

var (
	logMu   sync.RWMutex // read: an event is delivered; write: SetLogCallback
	logFunc func(level LogLevel, target, message string)
	setMu   sync.Mutex // serialises SetLogCallback
)

// SetLogCallback sets (f nil or maxLevel LogOff: removes) the process's log callback: it receives
// the library's events (its own, tonic's, h2's) at maxLevel and more severe, with their target
// (e.g. "jina_net::send") and message. f runs on the library's threads (several at once) and must
// return promptly; it must not call SetLogCallback. When SetLogCallback returns, the previous
// callback is no longer called.
func SetLogCallback(f func(level LogLevel, target, message string), maxLevel LogLevel) error {
	setMu.Lock()
	defer setMu.Unlock()
	on := f != nil && maxLevel != LogOff
	if on {
		logMu.Lock()
		logFunc = f
		logMu.Unlock()
	} else {
		maxLevel = LogOff
	}
	if err := call(func() C.jina_net_result { return C.jinanet_log_set(C.bool(on), C.uint32_t(maxLevel)) }); err != nil {
		return err
	}
	if !on {
		logMu.Lock()
		logFunc = nil
		logMu.Unlock()
	}
	return nil
}
