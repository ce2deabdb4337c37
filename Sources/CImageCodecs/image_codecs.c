// See image_codecs.h. libjpeg reports errors by calling error_exit, which must not return: it longjmps
// back here, so no Swift frame is ever skipped.
#include "image_codecs.h"
#include <png.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

static int is_png(const uint8_t *d, size_t n) { return n >= 8 && png_sig_cmp((png_const_bytep)d, 0, 8) == 0; }
static int is_jpeg(const uint8_t *d, size_t n) { return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF; }

struct jpeg_failure { struct jpeg_error_mgr manager; jmp_buf jump; char *error; };

static void jpeg_fail(j_common_ptr info) {
    struct jpeg_failure *failure = (struct jpeg_failure *)info->err;
    char text[JMSG_LENGTH_MAX];
    info->err->format_message(info, text);
    snprintf(failure->error, 200, "corrupt or unsupported JPEG (%s)", text);
    longjmp(failure->jump, 1);
}

/// libjpeg's warnings (level -1) all mean corrupt data — a truncated file ("premature end of data") decodes
/// with made-up pixels — so they are errors, as Pillow makes them; trace messages (level >= 0) stay silent.
static void jpeg_warning(j_common_ptr info, int level) {
    if (level >= 0) return;
    struct jpeg_failure *failure = (struct jpeg_failure *)info->err;
    char text[JMSG_LENGTH_MAX];
    info->err->format_message(info, text);
    snprintf(failure->error, 200, "damaged JPEG data (%s): a truncated or corrupt file", text);
    longjmp(failure->jump, 1);
}

/// Opens a JPEG for reading: header read, or -1 with the reason.
static int jpeg_open(struct jpeg_decompress_struct *info, struct jpeg_failure *failure, const uint8_t *d, size_t n, char *error) {
    info->err = jpeg_std_error(&failure->manager);
    failure->manager.error_exit = jpeg_fail;
    failure->manager.emit_message = jpeg_warning;
    failure->error = error;
    jpeg_create_decompress(info);
    jpeg_mem_src(info, d, (unsigned long)n);
    jpeg_read_header(info, TRUE);
    if (info->jpeg_color_space == JCS_CMYK || info->jpeg_color_space == JCS_YCCK) {
        snprintf(error, 200, "CMYK JPEGs are not supported; save it as RGB");
        return -1;
    }
    return 0;
}

/// Reads a PNG's header into `image` (libpng's simplified API); -1 with the reason in `error`.
static int png_open(png_image *image, const uint8_t *d, size_t n, char *error) {
    memset(image, 0, sizeof *image);
    image->version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(image, d, n)) {
        snprintf(error, 200, "corrupt or unsupported PNG (%s)", image->message);
        return -1;
    }
    return 0;
}

int distrain_image_info(const uint8_t *d, size_t n, int *width, int *height, int *channels, char *error) {
    if (is_png(d, n)) {
        png_image image;
        if (png_open(&image, d, n, error) != 0) return -1;
        *width = (int)image.width; *height = (int)image.height;
        *channels = (image.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
        png_image_free(&image);
        return 0;
    }
    if (is_jpeg(d, n)) {
        struct jpeg_decompress_struct info;
        struct jpeg_failure failure;
        if (setjmp(failure.jump)) { jpeg_destroy_decompress(&info); return -1; }
        if (jpeg_open(&info, &failure, d, n, error) != 0) { jpeg_destroy_decompress(&info); return -1; }
        *width = (int)info.image_width; *height = (int)info.image_height;
        *channels = info.num_components == 1 ? 1 : 3;
        jpeg_destroy_decompress(&info);
        return 0;
    }
    snprintf(error, 200, "not a PNG or JPEG image");
    return -1;
}

int distrain_image_decode(const uint8_t *d, size_t n, uint8_t *out, int channels, char *error) {
    if (is_png(d, n)) {
        png_image image;
        if (png_open(&image, d, n, error) != 0) return -1;
        image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
        png_color black = {0, 0, 0};
        if (!png_image_finish_read(&image, &black, out, 0, NULL)) {
            snprintf(error, 200, "corrupt or truncated PNG (%s)", image.message);
            png_image_free(&image);
            return -1;
        }
        return 0;
    }
    if (is_jpeg(d, n)) {
        struct jpeg_decompress_struct info;
        struct jpeg_failure failure;
        if (setjmp(failure.jump)) { jpeg_destroy_decompress(&info); return -1; }
        if (jpeg_open(&info, &failure, d, n, error) != 0) { jpeg_destroy_decompress(&info); return -1; }
        info.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
        jpeg_start_decompress(&info);
        size_t stride = (size_t)info.output_width * (size_t)channels;
        while (info.output_scanline < info.output_height) {
            JSAMPROW row = out + (size_t)info.output_scanline * stride;
            jpeg_read_scanlines(&info, &row, 1);
        }
        jpeg_finish_decompress(&info);
        jpeg_destroy_decompress(&info);
        return 0;
    }
    snprintf(error, 200, "not a PNG or JPEG image");
    return -1;
}
