/*
 * Writes the fixed-base tables of p256.c, computed from the curve's
 * constants (G) with p256.c's own arithmetic (built with -DP256_GEN_TABLE,
 * which leaves out the tables and everything that uses them):
 *
 *   gen_table comb     p256_table.h: the comb (P256_WTABLE=0), 31 affine
 *                      points, COMB[d - 1] = sum over the set bits j of d
 *                      of 2^(52 j) G
 *   gen_table window   p256_wtable.h: the signed windows (P256_WTABLE=1),
 *                      26 x 16 affine points, WTAB[b][m - 1] = m 2^(10 b) G
 *
 * Points in Montgomery form (R = 2^256), 64-bit limbs, least significant
 * first. `make test-p256` regenerates both and compares them with the
 * committed files.
 *
 *   cc -O1 -DP256_GEN_TABLE -I.. gen_table.c -o gen_table
 *   ./gen_table comb > ../p256_table.h; ./gen_table window > ../p256_wtable.h
 */
#include <stdio.h>

#include "../p256.c"

static const uint8_t G_BYTES[64] = {
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
};

/* limb i (0 = least significant) of the Montgomery form itself, 64 bits */
static unsigned long long limb64(const fe a, int i)
{
    uint8_t b[32];
    unsigned long long v = 0;
    mp_to_bytes(b, a);
    for (int j = 0; j < 8; j++) {
        v = v << 8 | b[31 - 8 * i - 7 + j];
    }
    return v;
}

static void print_fe(const fe a)
{
    for (int i = 0; i < 4; i++) {
        printf("C64(0x%016llxULL)%s", limb64(a, i), i < 3 ? ", " : "");
    }
}

static int comb(const jac *g)
{
    jac teeth[COMB_TEETH], acc;
    fe x, y;
    int j, d, i;

    teeth[0] = *g;
    for (j = 1; j < COMB_TEETH; j++) {
        teeth[j] = teeth[j - 1];
        for (i = 0; i < COMB_COLS; i++) {
            jac_dbl(&teeth[j], &teeth[j]);
        }
    }
    printf("/* Written by test/gen_table.c: do not edit. COMB[d - 1] = sum over the set\n"
           " * bits j of d of 2^(%d j) G, affine (x, y), Montgomery form (R = 2^256). */\n",
           COMB_COLS);
    for (d = 1; d < 32; d++) {
        memset(&acc, 0, sizeof acc);
        for (j = 0; j < COMB_TEETH; j++) {
            if (d >> j & 1) {
                jac_add_vt(&acc, &acc, &teeth[j]);
            }
        }
        jac_to_affine(x, y, &acc);
        printf("    { { ");
        print_fe(x);
        printf(" },\n      { ");
        print_fe(y);
        printf(" } },\n");
    }
    return 0;
}

static int window(const jac *g)
{
    jac base = *g, acc;
    fe x, y;

    printf("/* Written by test/gen_table.c: do not edit. Block b (0..%d), then m = 1..16:\n"
           " * WTAB[b][m - 1] = m 2^(10 b) G, affine, Montgomery form (R = 2^256):\n"
           " * WT_P(x0, x1, x2, x3, y0, y1, y2, y3), 64-bit limbs, least significant first. */\n",
           WT_BLOCKS - 1);
    for (int b = 0; b < WT_BLOCKS; b++) {
        printf("{\n");
        acc = base;
        for (int m = 1; m <= 16; m++) {
            if (m > 1) {
                jac_add_vt(&acc, &acc, &base);
            }
            jac_to_affine(x, y, &acc);
            printf("WT_P(");
            for (int i = 0; i < 8; i++) {
                printf("0x%016llx%s", limb64(i < 4 ? x : y, i % 4), i < 7 ? "," : "),\n");
            }
        }
        printf("},\n");
        for (int i = 0; i < 10; i++) {
            jac_dbl(&base, &base);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    jac g;
    fe x, y;

    if (point_from_bytes(x, y, G_BYTES) != 0) {
        fprintf(stderr, "G not on the curve\n");
        return 1;
    }
    memcpy(g.x, x, sizeof(fe));
    memcpy(g.y, y, sizeof(fe));
    memcpy(g.z, ONE_M, sizeof(fe));
    if (argc == 2 && strcmp(argv[1], "comb") == 0) {
        return comb(&g);
    }
    if (argc == 2 && strcmp(argv[1], "window") == 0) {
        return window(&g);
    }
    fprintf(stderr, "usage: gen_table comb|window\n");
    return 2;
}
