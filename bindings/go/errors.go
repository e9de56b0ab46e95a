package jinanet

/*
#include "jina_net.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// Code is a libjina_net result code (the C enum jina_net_result, an int32_t since C ABI 0.2.0). A
// Code is itself an error, so each code doubles as a sentinel: errors.Is(err, jinanet.ErrPoolClosed)
// is true for every *Error whose Code is CodePoolClosed.
type Code int32

// The result codes of the C ABI, with the same values.
const (
	CodeOK                Code = C.JINA_NET_OK
	CodeNullArgument      Code = C.JINA_NET_NULL_ARGUMENT
	CodeInvalidUTF8       Code = C.JINA_NET_INVALID_UTF8
	CodeInvalidArgument   Code = C.JINA_NET_INVALID_ARGUMENT
	CodeInvalidAddress    Code = C.JINA_NET_INVALID_ADDRESS
	CodeInvalidRequest    Code = C.JINA_NET_INVALID_REQUEST
	CodeUnknownDeployment Code = C.JINA_NET_UNKNOWN_DEPLOYMENT
	CodeNoReplicas        Code = C.JINA_NET_NO_REPLICAS
	CodeRPCError          Code = C.JINA_NET_RPC_ERROR
	CodeDeadlineExceeded  Code = C.JINA_NET_DEADLINE_EXCEEDED
	CodeCancelled         Code = C.JINA_NET_CANCELLED
	CodePoolClosed        Code = C.JINA_NET_POOL_CLOSED
	CodeTLSError          Code = C.JINA_NET_TLS_ERROR
	CodeRuntimeError      Code = C.JINA_NET_RUNTIME_ERROR
	CodeAlreadyStarted    Code = C.JINA_NET_ALREADY_STARTED
	CodeInvalidHost       Code = C.JINA_NET_INVALID_HOST
	CodeInvalidResponse   Code = C.JINA_NET_INVALID_RESPONSE
	CodeUnsupported       Code = C.JINA_NET_UNSUPPORTED
	CodeNotFound          Code = C.JINA_NET_NOT_FOUND
	CodePanic             Code = C.JINA_NET_PANIC
	CodeResourceExhausted Code = C.JINA_NET_RESOURCE_EXHAUSTED
)

// Sentinel errors, one per failure code, for errors.Is.
var (
	ErrNullArgument      error = CodeNullArgument
	ErrInvalidUTF8       error = CodeInvalidUTF8
	ErrInvalidArgument   error = CodeInvalidArgument
	ErrInvalidAddress    error = CodeInvalidAddress
	ErrInvalidRequest    error = CodeInvalidRequest
	ErrUnknownDeployment error = CodeUnknownDeployment
	ErrNoReplicas        error = CodeNoReplicas
	ErrRPC               error = CodeRPCError
	ErrDeadlineExceeded  error = CodeDeadlineExceeded
	ErrCancelled         error = CodeCancelled
	ErrPoolClosed        error = CodePoolClosed
	ErrTLS               error = CodeTLSError
	ErrRuntime           error = CodeRuntimeError
	ErrAlreadyStarted    error = CodeAlreadyStarted
	ErrInvalidHost       error = CodeInvalidHost
	ErrInvalidResponse   error = CodeInvalidResponse
	ErrUnsupported       error = CodeUnsupported
	ErrNotFound          error = CodeNotFound
	ErrPanic             error = CodePanic
	// ErrResourceExhausted: every replica of the head or shard had its in-flight limit and the
	// queue of waiting sends was full (PoolOptions.MaxInFlightPerReplica).
	ErrResourceExhausted error = CodeResourceExhausted
)

// String is the C name of the code, e.g. "JINA_NET_POOL_CLOSED" (from jina_net_result_name).
func (c Code) String() string {
	if c < 0 {
		return "JINA_NET_UNKNOWN_RESULT" // what jina_net_result_name says for a value that is not a code
	}
	return C.GoString(C.jina_net_result_name(C.uint32_t(c)))
}

// Error makes a Code usable as a sentinel error; it is the code's name, as String (so a Code prints
// the same with %v and %s).
func (c Code) Error() string { return c.String() }

// Error is a failure reported by libjina_net: the result code and the library's message. For the
// failure of one target of a send it also says where (Address, Head, Shard) and the gRPC status
// (GRPCCode, GRPCMessage).
//
// errors.Is(err, jinanet.ErrX) compares the code. An error caused by the context of a send (its
// cancellation or deadline) also unwraps to ctx.Err(), so errors.Is(err, context.Canceled) holds.
type Error struct {
	// Code is the library's result code (never CodeOK).
	Code Code
	// Message is the library's message: it names the function and, where they apply, the
	// deployment, the address and the gRPC status.
	Message string
	// Address is "host:port" of the replica of a failed target ("" when not about one target).
	Address string
	// Head says the failed target was a deployment's head.
	Head bool
	// Shard is the shard of the failed target (-1 for a head, a one-shot send, or no target).
	Shard int
	// GRPCCode is the gRPC status code of the failure, -1 when it had none (e.g. pool closed).
	GRPCCode int
	// GRPCMessage is the gRPC status message ("" when there was none).
	GRPCMessage string

	cause error
}

// Error is the failure in Go style: "jinanet: " and what went wrong in words, then the library's
// message, e.g. "jinanet: deadline exceeded: jina_net_pool_send: ...". The C name of the code is
// e.Code.String() ("JINA_NET_DEADLINE_EXCEEDED"); errors.Is compares codes, not text.
func (e *Error) Error() string {
	if e.Message == "" {
		return "jinanet: " + e.Code.words()
	}
	return fmt.Sprintf("jinanet: %s: %s", e.Code.words(), e.Message)
}

// words is what a code means, in lower case as Go error strings are: CodeDeadlineExceeded is
// "deadline exceeded", CodeTLSError "TLS error".
func (c Code) words() string {
	switch c {
	case CodeNullArgument:
		return "nil argument"
	case CodeInvalidUTF8:
		return "invalid UTF-8"
	case CodeRPCError:
		return "RPC failed"
	case CodeTLSError:
		return "TLS error"
	case CodePanic:
		return "library panicked"
	}
	name := c.String()
	if !strings.HasPrefix(name, "JINA_NET_") {
		return name
	}
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "JINA_NET_")), "_", " ")
}

// Is reports whether target is the sentinel (Code) of e's code.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// Unwrap returns the context error that caused e, if any.
func (e *Error) Unwrap() error { return e.cause }

func newError(code Code, msg string) *Error {
	return &Error{Code: code, Message: msg, Shard: -1, GRPCCode: -1}
}

func errPoolClosed(fn string) *Error {
	return newError(CodePoolClosed, fn+": the pool is closed")
}

// call runs one C call and turns a failure into an *Error carrying the message the library stored
// for the calling OS thread. The goroutine is locked to its thread so that the message read is the
// one of this call (jina_net_last_error_message is per thread).
func call(f func() C.jina_net_result) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := f()
	if rc == C.JINA_NET_OK {
		return nil
	}
	return newError(Code(rc), lastErrorMessage())
}

func lastErrorMessage() string {
	n := C.jina_net_last_error_message(nil, 0)
	if n == 0 {
		return ""
	}
	buf := make([]byte, int(n)+1)
	m := C.jina_net_last_error_message((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if int(m) < int(n) {
		n = m
	}
	return string(buf[:n])
}

// withContext attaches the context's error to a failure of a send whose context is done. The
// library enforces the context's deadline itself (as timeout_ms) and may report it a moment before
// ctx.Done fires: a DEADLINE_EXCEEDED once the deadline has passed is the context's deadline too.
func withContext(err error, ctx context.Context) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	if ctx.Err() == nil {
		if deadline, ok := ctx.Deadline(); ok && e.Code == CodeDeadlineExceeded && !time.Now().Before(deadline) {
			e.cause = context.DeadlineExceeded
		}
		return err
	}
	if e.Code == CodeCancelled || e.Code == CodeDeadlineExceeded {
		e.cause = ctx.Err()
		if ctx.Err() == context.DeadlineExceeded && e.Code == CodeCancelled {
			e.Code = CodeDeadlineExceeded
		}
	}
	return err
}

// contextError is the error of a send refused because its context was already done.
func contextError(ctx context.Context, fn string) error {
	code := CodeCancelled
	if ctx.Err() == context.DeadlineExceeded {
		code = CodeDeadlineExceeded
	}
	e := newError(code, fn+": "+ctx.Err().Error()+" before the send started")
	e.cause = ctx.Err()
	return e
}
