// ggml-dequant: ggml's own dequantizers as a filter, for formats/ggml's tests
// (TestDequantizersMatchGGMLSource). Built by scripts/ggml-reference.sh
// against ggml's C source (ggml-quants.c and ggml-common.h, as vendored in a
// pinned release of the ollama Go module, fetched from the Go module proxy).
//
//   ggml-dequant TYPE < BLOCKS > VALUES
//   ggml-dequant --list
//
// TYPE is a ggml type id. BLOCKS are whole blocks of that type; VALUES are the
// float32 values (host byte order, little-endian on the machines ckpt runs on)
// that ggml's dequantize_row_* writes for them. --list prints, for each type
// this program decodes, "ID ELEMS BYTES": the values per block and the bytes
// per block of ggml's own block structs (sizeof), so the test checks its type
// table against them too. Exit status 2 on a usage error, an unknown type or
// input that is not whole blocks.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-common.h"
#include "ggml-impl.h"
#include "ggml-quants.h"

// ggml-quants.c calls these ggml.c functions only from its quantizers and
// row validators, which this program never runs.
void ggml_abort(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ggml-dequant: ggml_abort at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
size_t ggml_type_size(enum ggml_type type) { (void)type; ggml_abort(__FILE__, __LINE__, "ggml_type_size"); }
size_t ggml_row_size(enum ggml_type type, int64_t ne) { (void)type; (void)ne; ggml_abort(__FILE__, __LINE__, "ggml_row_size"); }
const char *ggml_type_name(enum ggml_type type) { (void)type; return "?"; }

typedef void (*dequant_fn)(const void *x, float *y, int64_t k);

static void row_f16(const void *x, float *y, int64_t k) {
    const ggml_fp16_t *h = x;
    for (int64_t i = 0; i < k; i++) y[i] = GGML_FP16_TO_FP32(h[i]);
}

static void row_bf16(const void *x, float *y, int64_t k) {
    const ggml_bf16_t *h = x;
    for (int64_t i = 0; i < k; i++) y[i] = GGML_BF16_TO_FP32(h[i]);
}

struct kind {
    int id;
    int elems;
    size_t bytes;
    dequant_fn fn;
};

#define KIND(ID, ELEMS, BLOCK, FN) {ID, ELEMS, sizeof(BLOCK), (dequant_fn)(FN)}

static const struct kind kinds[] = {
    KIND(GGML_TYPE_F16, 1, ggml_fp16_t, row_f16),
    KIND(GGML_TYPE_BF16, 1, ggml_bf16_t, row_bf16),
    KIND(GGML_TYPE_Q4_0, QK4_0, block_q4_0, dequantize_row_q4_0),
    KIND(GGML_TYPE_Q4_1, QK4_1, block_q4_1, dequantize_row_q4_1),
    KIND(GGML_TYPE_Q5_0, QK5_0, block_q5_0, dequantize_row_q5_0),
    KIND(GGML_TYPE_Q5_1, QK5_1, block_q5_1, dequantize_row_q5_1),
    KIND(GGML_TYPE_Q8_0, QK8_0, block_q8_0, dequantize_row_q8_0),
    KIND(GGML_TYPE_MXFP4, QK_MXFP4, block_mxfp4, dequantize_row_mxfp4),
    KIND(GGML_TYPE_Q2_K, QK_K, block_q2_K, dequantize_row_q2_K),
    KIND(GGML_TYPE_Q3_K, QK_K, block_q3_K, dequantize_row_q3_K),
    KIND(GGML_TYPE_Q4_K, QK_K, block_q4_K, dequantize_row_q4_K),
    KIND(GGML_TYPE_Q5_K, QK_K, block_q5_K, dequantize_row_q5_K),
    KIND(GGML_TYPE_Q6_K, QK_K, block_q6_K, dequantize_row_q6_K),
    KIND(GGML_TYPE_Q8_K, QK_K, block_q8_K, dequantize_row_q8_K),
    KIND(GGML_TYPE_TQ1_0, QK_K, block_tq1_0, dequantize_row_tq1_0),
    KIND(GGML_TYPE_TQ2_0, QK_K, block_tq2_0, dequantize_row_tq2_0),
    KIND(GGML_TYPE_IQ2_XXS, QK_K, block_iq2_xxs, dequantize_row_iq2_xxs),
    KIND(GGML_TYPE_IQ2_XS, QK_K, block_iq2_xs, dequantize_row_iq2_xs),
    KIND(GGML_TYPE_IQ2_S, QK_K, block_iq2_s, dequantize_row_iq2_s),
    KIND(GGML_TYPE_IQ3_XXS, QK_K, block_iq3_xxs, dequantize_row_iq3_xxs),
    KIND(GGML_TYPE_IQ3_S, QK_K, block_iq3_s, dequantize_row_iq3_s),
    KIND(GGML_TYPE_IQ1_S, QK_K, block_iq1_s, dequantize_row_iq1_s),
    KIND(GGML_TYPE_IQ1_M, QK_K, block_iq1_m, dequantize_row_iq1_m),
    KIND(GGML_TYPE_IQ4_NL, QK4_NL, block_iq4_nl, dequantize_row_iq4_nl),
    KIND(GGML_TYPE_IQ4_XS, QK_K, block_iq4_xs, dequantize_row_iq4_xs),
};

int main(int argc, char **argv) {
    const size_t nkinds = sizeof(kinds) / sizeof(kinds[0]);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < nkinds; i++) printf("%d %d %zu\n", kinds[i].id, kinds[i].elems, kinds[i].bytes);
        return 0;
    }
    char *end;
    long id = argc == 2 ? strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || *end != 0) {
        fprintf(stderr, "usage: ggml-dequant TYPE < BLOCKS > VALUES | ggml-dequant --list\n");
        return 2;
    }
    const struct kind *k = NULL;
    for (size_t i = 0; i < nkinds; i++)
        if (kinds[i].id == id) k = &kinds[i];
    if (k == NULL) {
        fprintf(stderr, "ggml-dequant: type %ld is not decoded here\n", id);
        return 2;
    }
    size_t cap = 1 << 20, n = 0, got;
    unsigned char *in = malloc(cap);
    while (in != NULL && (got = fread(in + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) in = realloc(in, cap *= 2);
    }
    if (in == NULL || ferror(stdin)) {
        fprintf(stderr, "ggml-dequant: reading the blocks failed\n");
        return 2;
    }
    if (n % k->bytes != 0) {
        fprintf(stderr, "ggml-dequant: %zu bytes are not whole blocks of %zu\n", n, k->bytes);
        return 2;
    }
    int64_t values = (int64_t)(n / k->bytes) * k->elems;
    float *out = malloc(values > 0 ? values * sizeof(float) : 1);
    if (out == NULL) {
        fprintf(stderr, "ggml-dequant: out of memory\n");
        return 2;
    }
    k->fn(in, out, values);
    if (fwrite(out, sizeof(float), values, stdout) != (size_t)values || fflush(stdout) != 0) {
        fprintf(stderr, "ggml-dequant: writing the values failed\n");
        return 2;
    }
    return 0;
}
