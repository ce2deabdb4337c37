// inflateInit2 is a macro over inflateInit2_ (it passes the header's version and stream size).
#ifndef DISTRAIN_CZLIB_SHIM_H
#define DISTRAIN_CZLIB_SHIM_H
#include <zlib.h>

static inline int czlib_inflate_init2(z_streamp stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}
#endif
