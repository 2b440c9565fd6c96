/*
 * clip_image.c - decoding JPEG (libjpeg-turbo) and PNG (libpng) files to
 * 8-bit RGB, and CLIP's preprocessing as Hugging Face's CLIPImageProcessor
 * applies it through PIL: convert("RGB") (grey replicated, alpha dropped,
 * palette expanded), resize so the shorter side equals the model's image
 * size (the longer side int(size * long / short)), a center crop with
 * offsets floor((side - size) / 2), then (v / 255 - mean) / std.
 *
 * The resize reproduces PIL's Image.resize(..., BICUBIC) on 8-bit images
 * (libImaging/Resample.c): a separable bicubic kernel with a = -0.5 whose
 * support widens by the scale factor on downscaling (antialiasing),
 * coefficients normalised to sum 1 then rounded to 22-bit fixed point,
 * a horizontal pass into 8-bit rows (rounded and clipped), then a
 * vertical pass. The result is PIL's to the bit for the same decoded pixels.
 */
#include "clip_internal.h"

#include <errno.h>
#include <jerror.h>
#include <jpeglib.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SIDE   65500
#define MAX_PIXELS (1u << 28)

static const double CLIP_MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
static const double CLIP_STD[3] = {0.26862954, 0.26130258, 0.27577711};

/* ---- JPEG ---------------------------------------------------------------------- */

typedef struct jpeg_fail {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_fail;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_fail *f = (jpeg_fail *)c->err;
    c->err->format_message(c, f->msg);
    longjmp(f->jump, 1);
}

/* A truncated file is an error, as in PIL, not a grey-filled image. */
static void jpeg_on_message(j_common_ptr c, int level)
{
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF)
        jpeg_on_error(c);
}

static int decode_jpeg(FILE *fp, const char *path, uint8_t **out, size_t *ow, size_t *oh)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_fail fail;
    uint8_t *volatile rgb = NULL;
    cinfo.err = jpeg_std_error(&fail.pub);
    fail.pub.error_exit = jpeg_on_error;
    fail.pub.emit_message = jpeg_on_message;
    if (setjmp(fail.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        return vmf__clip_error(VMF_EFORMAT, "%s: corrupt JPEG: %s", path, fail.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, fp);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return vmf__clip_error(VMF_EFORMAT, "%s: CMYK JPEG is not supported", path);
    }
    cinfo.out_color_space = JCS_RGB;
    size_t w = cinfo.image_width, h = cinfo.image_height;
    if (w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || w * h > MAX_PIXELS) {
        jpeg_destroy_decompress(&cinfo);
        return vmf__clip_error(VMF_EFORMAT, "%s: image of %zux%zu pixels is too large", path, w, h);
    }
    jpeg_start_decompress(&cinfo);
    w = cinfo.output_width;
    h = cinfo.output_height;
    rgb = vmf__clip_alloc(w * h, 3);
    if (!rgb) {
        jpeg_destroy_decompress(&cinfo);
        return vmf__clip_error(VMF_ENOMEM, "%s: out of memory", path);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = rgb + (size_t)cinfo.output_scanline * w * 3;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *out = rgb;
    *ow = w;
    *oh = h;
    return VMF_OK;
}

/* ---- PNG ------------------------------------------------------------------------ */

typedef struct png_fail {
    char msg[256];
} png_fail;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_fail *f = png_get_error_ptr(png);
    snprintf(f->msg, sizeof f->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static int decode_png(FILE *fp, const char *path, uint8_t **out, size_t *ow, size_t *oh)
{
    png_fail fail = {{0}};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &fail, png_on_error, png_on_warning);
    if (!png)
        return vmf__clip_error(VMF_ENOMEM, "%s: out of memory", path);
    png_infop info = png_create_info_struct(png);
    uint8_t *volatile rgb = NULL;
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return vmf__clip_error(VMF_ENOMEM, "%s: out of memory", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rgb);
        free(rows);
        return vmf__clip_error(VMF_EFORMAT, "%s: corrupt PNG: %s", path, fail.msg);
    }
    png_set_user_limits(png, MAX_SIDE, MAX_SIDE);
    png_init_io(png, fp);
    png_read_info(png, info);
    size_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (w * h > MAX_PIXELS) {
        png_destroy_read_struct(&png, &info, NULL);
        return vmf__clip_error(VMF_EFORMAT, "%s: image of %zux%zu pixels is too large", path, w, h);
    }
    /* PIL's convert("RGB"): expand palettes and low bit depths, keep the high byte of 16-bit
     * samples, replicate grey, drop alpha (no compositing). */
    int ct = png_get_color_type(png, info);
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != w * 3)
        png_error(png, "unexpected row layout after conversion");
    rgb = vmf__clip_alloc(w * h, 3);
    rows = vmf__clip_alloc(h, sizeof(png_bytep));
    if (!rgb || !rows)
        png_error(png, "out of memory");
    for (size_t y = 0; y < h; y++)
        rows[y] = rgb + y * w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *out = rgb;
    *ow = w;
    *oh = h;
    return VMF_OK;
}

int vmf__clip_decode_file(const char *path, uint8_t **rgb, size_t *w, size_t *h)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return vmf__clip_error(VMF_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return vmf__clip_error(VMF_EIO, "%s: not a regular file", path);
    }
    uint8_t magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, fp);
    rewind(fp);
    int rc;
    if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF)
        rc = decode_jpeg(fp, path, rgb, w, h);
    else if (got == 8 && png_sig_cmp(magic, 0, 8) == 0)
        rc = decode_png(fp, path, rgb, w, h);
    else if (got == 0)
        rc = vmf__clip_error(VMF_EFORMAT, "%s: empty file", path);
    else
        rc = vmf__clip_error(VMF_EFORMAT, "%s: not a JPEG or PNG image", path);
    fclose(fp);
    return rc;
}

/* ---- resize (PIL's bicubic) -------------------------------------------------------- */

#define PRECISION_BITS (32 - 8 - 2)

static double bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/*
 * Coefficients of one axis for the outputs first .. first+count-1 of out_size:
 * bounds [count][2] (first input, number of inputs), kk [count][ksize] fixed point.
 */
static int coeffs(size_t in_size, size_t out_size, size_t first, size_t count, int **bounds_out,
                  int32_t **kk_out, size_t *ksize_out)
{
    double scale = (double)in_size / (double)out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    size_t ksize = (size_t)ceil(support) * 2 + 1;
    int *bounds = vmf__clip_alloc(count, 2 * sizeof *bounds);
    int32_t *kk = vmf__clip_alloc(count, ksize * sizeof *kk);
    double *pre = vmf__clip_alloc(ksize, sizeof *pre);
    if (!bounds || !kk || !pre) {
        free(bounds);
        free(kk);
        free(pre);
        return vmf__clip_error(VMF_ENOMEM, "out of memory resizing an image");
    }
    for (size_t i = 0; i < count; i++) {
        size_t xx = first + i;
        double center = ((double)xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0)
            xmin = 0;
        if (xmax > (int)in_size)
            xmax = (int)in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double wgt = bicubic(((double)(x + xmin) - center + 0.5) * ss);
            pre[x] = wgt;
            ww += wgt;
        }
        for (size_t x = 0; x < ksize; x++) {
            double v = (int)x < xmax ? (ww != 0.0 ? pre[x] / ww : pre[x]) : 0.0;
            kk[i * ksize + x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                                      : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        bounds[2 * i] = xmin;
        bounds[2 * i + 1] = xmax;
    }
    free(pre);
    *bounds_out = bounds;
    *kk_out = kk;
    *ksize_out = ksize;
    return VMF_OK;
}

static uint8_t clip8(int32_t v)
{
    if (v >= (1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/*
 * The S x S window at (left, top) of src [h][w][3] resized to ow x oh, into
 * dst [S][S][3]: horizontal pass then vertical pass, as PIL does. Computing
 * only the window's outputs (and the intermediate rows they read) gives the
 * same bytes as resizing everything and cropping, and keeps a hostile
 * aspect ratio (1 x 65500) from costing gigabytes.
 */
static int resize_crop(const uint8_t *src, size_t w, size_t h, size_t ow, size_t oh, size_t left,
                       size_t top, size_t S, uint8_t *dst)
{
    int *bh = NULL, *bv = NULL;
    int32_t *kh = NULL, *kv = NULL;
    size_t ksh, ksv;
    uint8_t *tmp = NULL;
    int rc;
    if ((rc = coeffs(w, ow, left, S, &bh, &kh, &ksh)) != VMF_OK ||
        (rc = coeffs(h, oh, top, S, &bv, &kv, &ksv)) != VMF_OK)
        goto done;
    /* Input rows the vertical pass reads. */
    size_t y0 = (size_t)bv[0], y1 = y0;
    for (size_t i = 0; i < S; i++) {
        size_t a = (size_t)bv[2 * i], b = a + (size_t)bv[2 * i + 1];
        y0 = a < y0 ? a : y0;
        y1 = b > y1 ? b : y1;
    }
    tmp = vmf__clip_alloc(y1 - y0 ? y1 - y0 : 1, S * 3);
    if (!tmp) {
        rc = vmf__clip_error(VMF_ENOMEM, "out of memory resizing an image");
        goto done;
    }
    for (size_t y = y0; y < y1; y++)
        for (size_t xx = 0; xx < S; xx++) {
            const int32_t *k = kh + xx * ksh;
            int xmin = bh[2 * xx], xmax = bh[2 * xx + 1];
            for (int ch = 0; ch < 3; ch++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < xmax; x++)
                    ss += (int32_t)src[(y * w + (size_t)(x + xmin)) * 3 + (size_t)ch] * k[x];
                tmp[((y - y0) * S + xx) * 3 + (size_t)ch] = clip8(ss);
            }
        }
    for (size_t yy = 0; yy < S; yy++) {
        const int32_t *k = kv + yy * ksv;
        size_t ymin = (size_t)bv[2 * yy] - y0;
        int ymax = bv[2 * yy + 1];
        for (size_t xx = 0; xx < S; xx++)
            for (int ch = 0; ch < 3; ch++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int y = 0; y < ymax; y++)
                    ss += (int32_t)tmp[((ymin + (size_t)y) * S + xx) * 3 + (size_t)ch] * k[y];
                dst[(yy * S + xx) * 3 + (size_t)ch] = clip8(ss);
            }
    }
    rc = VMF_OK;
done:
    free(bh);
    free(bv);
    free(kh);
    free(kv);
    free(tmp);
    return rc;
}

int vmf_clip_preprocess_rgb(const vmf_clip *m, const uint8_t *rgb, size_t w, size_t h,
                            float *pixels)
{
    if (!m || !rgb || !pixels || w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE)
        return vmf__clip_error(VMF_EINVAL, "vmf_clip_preprocess_rgb: bad argument");
    size_t S = m->cfg.image, ow, oh;
    /* Hugging Face: the shorter side becomes S, the longer int(S * long / short). */
    if (w <= h) {
        ow = S;
        oh = (size_t)((double)(S * h) / (double)w);
    } else {
        oh = S;
        ow = (size_t)((double)(S * w) / (double)h);
    }
    size_t top = (oh - S) / 2, left = (ow - S) / 2;
    uint8_t *res = vmf__clip_alloc(S * S, 3);
    if (!res)
        return vmf__clip_error(VMF_ENOMEM, "out of memory resizing an image");
    int rc = resize_crop(rgb, w, h, ow, oh, left, top, S, res);
    if (rc == VMF_OK) {
        for (size_t ch = 0; ch < 3; ch++)
            for (size_t y = 0; y < S; y++)
                for (size_t x = 0; x < S; x++) {
                    double v = res[(y * S + x) * 3 + ch] / 255.0;
                    pixels[(ch * S + y) * S + x] = (float)((v - CLIP_MEAN[ch]) / CLIP_STD[ch]);
                }
    }
    free(res);
    return rc;
}

int vmf_clip_preprocess_file(const vmf_clip *m, const char *path, float *pixels)
{
    if (!m || !path || !pixels)
        return vmf__clip_error(VMF_EINVAL, "vmf_clip_preprocess_file: NULL argument");
    uint8_t *rgb = NULL;
    size_t w, h;
    int rc = vmf__clip_decode_file(path, &rgb, &w, &h);
    if (rc != VMF_OK)
        return rc;
    rc = vmf_clip_preprocess_rgb(m, rgb, w, h, pixels);
    free(rgb);
    return rc;
}

int vmf_clip_embed_images(const vmf_clip *m, const char *const *paths, size_t n, float *out)
{
    if (!m || (n && (!paths || !out)))
        return vmf__clip_error(VMF_EINVAL, "vmf_clip_embed_images: NULL argument");
    if (n == 0)
        return VMF_OK;
    size_t S = m->cfg.image;
    float *pixels = vmf__clip_alloc(n, 3 * S * S * sizeof(float));
    if (!pixels)
        return vmf__clip_error(VMF_ENOMEM, "out of memory for %zu images", n);
    int rc = VMF_OK;
    for (size_t i = 0; i < n && rc == VMF_OK; i++)
        rc = vmf_clip_preprocess_file(m, paths[i], pixels + i * 3 * S * S);
    if (rc == VMF_OK)
        rc = vmf_clip_embed_pixels(m, pixels, n, out);
    free(pixels);
    return rc;
}
