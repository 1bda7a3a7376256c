#ifndef CSEED_ZLIB_SHIM_H
#define CSEED_ZLIB_SHIM_H
#include <zlib.h>
// Negative window bits: raw deflate, no zlib header or trailer (what a ZIP member holds).
static inline int seed_deflate_init_raw(z_stream *s, int level) {
    return deflateInit2(s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
}
static inline int seed_inflate_init_raw(z_stream *s) { return inflateInit2(s, -15); }
#endif
