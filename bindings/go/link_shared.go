//go:build !jinanet_static && !jinanet_pkgconfig

package jinanet

// Default: link the shared library target/debug/libjina_net.so of this repository, found at run
// time through an rpath (so neither LD_LIBRARY_PATH nor an install is needed), with the header of
// this repository.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/debug -ljina_net -Wl,-rpath,${SRCDIR}/../../target/debug
*/
import "C"
