/* Declarations shared by the C preambles of package jinanet (not part of its API). */
#ifndef JINANET_SHIM_H
#define JINANET_SHIM_H

#include <stddef.h>
#include "jina_net.h"

/* How a send result is read: the library's accessors (jina_net_send_result_target,
 * jina_net_target_result_metadata). A NULL reader means those; the tests pass one that reads a
 * result they built themselves (testhooks.go), which the library's accessors cannot read. */
typedef struct {
	const jina_net_target_result *(*target)(const jina_net_send_result *result, size_t index);
	const jina_net_metadata *(*metadata)(const jina_net_target_result *target, size_t index);
} jinanet_reader;

#endif
