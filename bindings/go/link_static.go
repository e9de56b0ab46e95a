//go:build jinanet_static && !jinanet_pkgconfig

package jinanet

// With the build tag jinanet_static (go build -tags jinanet_static): link the static library
// target/debug/libjina_net.a into the Go binary; the result needs no libjina_net.so at run time.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/debug/libjina_net.a -lpthread -ldl -lm
*/
import "C"
