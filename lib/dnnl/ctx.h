/* The compute context, seen from outside lib/dnnl and the op files: one
 * oneDNN stream and one primitive cache. Each model (and each test) owns its
 * own context; contexts are independent, so distinct contexts may be used
 * from distinct threads at the same time. The engine is process-wide. */
#ifndef GTL__CTX_H
#define GTL__CTX_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

typedef struct gtl__ctx gtl__ctx;

gtl_status gtl__ctx_create(gtl__ctx **out_ctx);
void gtl__ctx_destroy(gtl__ctx *ctx);

/* Cache introspection, for tests, logs and the benchmark report. */
int64_t gtl__ctx_num_prims(const gtl__ctx *ctx);
/* The i-th cached primitive: the op that made it, oneDNN's implementation
 * name, whether it was marked hot, and how often it ran. */
void gtl__ctx_prim_info(const gtl__ctx *ctx, int64_t i, const char **out_op,
                        const char **out_impl, bool *out_hot, uint64_t *out_n_exec);
/* Number of hot primitives whose implementation is a reference kernel. */
int64_t gtl__ctx_num_hot_ref(const gtl__ctx *ctx);

/* Process-wide facts about oneDNN and the CPU. */
gtl_status gtl__dnnl_version_string(char *dst, size_t cap);
const char *gtl__dnnl_isa_name(void);
bool gtl__dnnl_has_bf16(void);

#endif /* GTL__CTX_H */
