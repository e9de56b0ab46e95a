//go:build jinanet_pkgconfig

package jinanet

// With the build tag jinanet_pkgconfig (go build -tags jinanet_pkgconfig): the header and the shared
// library of an installed libjina_net (scripts/install.sh), found with `pkg-config jina_net` (set
// PKG_CONFIG_PATH for a prefix pkg-config does not search). Nothing of this repository is used
// besides the Go sources; at run time the loader finds libjina_net.so.0.2 (the soname of C ABI 0.2)
// as for any installed library.

/*
#cgo pkg-config: jina_net
*/
import "C"
