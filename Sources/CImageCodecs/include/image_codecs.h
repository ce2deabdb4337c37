#ifndef DISTRAIN_IMAGE_CODECS_H
#define DISTRAIN_IMAGE_CODECS_H
#include <stddef.h>
#include <stdint.h>

// PNG (libpng's simplified API) and JPEG (libjpeg-turbo) decoding from memory, with libjpeg's longjmp
// error handling kept inside C. Every function returns 0 on success, or -1 with a one-line reason in
// `error` (at least 200 bytes).

/// The image's size and whether it has colour (channels 3) or not (1).
int distrain_image_info(const uint8_t *data, size_t size, int *width, int *height, int *channels, char *error);

/// Decodes into `out`, width × height × `channels` bytes (1: grey, 3: RGB; the libraries convert;
/// transparent pixels are composed on black), row-major, channels interleaved.
int distrain_image_decode(const uint8_t *data, size_t size, uint8_t *out, int channels, char *error);

#endif
