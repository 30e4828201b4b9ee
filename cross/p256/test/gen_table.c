/*
 * Writes p256_table.h: the fixed-base comb of p256.c (31 affine points in
 * Montgomery form, 64-bit limbs through the C64() macro), computed with
 * p256.c's own arithmetic (built with -DP256_GEN_TABLE, which leaves out the
 * table and everything that uses it).
 *
 *   cc -O1 -DP256_GEN_TABLE -I.. gen_table.c -o gen_table && ./gen_table > ../p256_table.h
 */
#include <stdio.h>

#include "../p256.c"

static const uint8_t G_BYTES[64] = {
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
};

static void print_fe(const fe a)
{
    uint8_t b[32];
    /* the Montgomery form itself, as 4 x 64 bits, least significant first */
    mp_to_bytes(b, a);
    for (int i = 0; i < 4; i++) {
        printf("C64(0x");
        for (int j = 0; j < 8; j++) {
            printf("%02x", b[31 - i * 8 - (7 - j)]);
        }
        printf("ULL)%s", i < 3 ? ", " : "");
    }
}

int main(void)
{
    jac teeth[COMB_TEETH], acc;
    fe x, y;
    int j, d, i;

    if (point_from_bytes(x, y, G_BYTES) != 0) {
        fprintf(stderr, "G not on the curve\n");
        return 1;
    }
    memcpy(teeth[0].x, x, sizeof(fe));
    memcpy(teeth[0].y, y, sizeof(fe));
    memcpy(teeth[0].z, ONE_M, sizeof(fe));
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
