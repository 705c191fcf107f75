// One SME instruction against plain C: SMOPA za0.s, p0/m, p0/m, z0.b, z1.b (signed int8, 4-way
// widening outer product into a 32-bit ZA tile), all lanes active, on seeded int8 vectors of
// the CPU's streaming vector length. ZA0.S[i][j] = sum over k < 4 of a[4i+k] * b[4j+k].
// Also SDOT in streaming mode on the same data, as a control. Prints the wrong elements.
//   aarch64-linux-gnu-gcc -O1 -o /tmp/smopa_probe runners/android/tools/smopa_probe.c
//   qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu max /tmp/smopa_probe
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

uint64_t svl_bytes(void);
// out: the tile's rows (SVL/4 rows of SVL/4 int32), one after another.
void smopa_tile(const int8_t* a, const int8_t* b, int32_t* out, uint64_t rows);
// out[j] = sum over k < 4 of a[4j+k] * b[4j+k] (SDOT z2.s, z0.b, z1.b), in streaming mode.
void sdot_streaming(const int8_t* a, const int8_t* b, int32_t* out);

__asm__(
    ".arch armv9-a+sme\n"
    ".text\n"
    ".global svl_bytes\n"
    "svl_bytes:\n"
    "  rdsvl x0, #1\n"
    "  ret\n"
    ".global smopa_tile\n"
    "smopa_tile:\n"
    "  smstart\n"
    "  zero {za}\n"
    "  ptrue p0.b\n"
    "  ld1b {z0.b}, p0/z, [x0]\n"
    "  ld1b {z1.b}, p0/z, [x1]\n"
    "  smopa za0.s, p0/m, p0/m, z0.b, z1.b\n"
    "  mov w12, #0\n"
    "1:\n"
    "  mov z2.s, p0/m, za0h.s[w12, 0]\n"
    "  st1w {z2.s}, p0, [x2]\n"
    "  addvl x2, x2, #1\n"
    "  add w12, w12, #1\n"
    "  cmp x12, x3\n"
    "  b.lt 1b\n"
    "  smstop\n"
    "  ret\n"
    ".global sdot_streaming\n"
    "sdot_streaming:\n"
    "  smstart sm\n"
    "  ptrue p0.b\n"
    "  ld1b {z0.b}, p0/z, [x0]\n"
    "  ld1b {z1.b}, p0/z, [x1]\n"
    "  mov z2.s, #0\n"
    "  sdot z2.s, z0.b, z1.b\n"
    "  st1w {z2.s}, p0, [x2]\n"
    "  smstop sm\n"
    "  ret\n");

int main(void) {
  uint64_t svl = svl_bytes(), rows = svl / 4;
  int8_t *a = malloc(svl), *b = malloc(svl);
  int32_t *tile = calloc(rows * rows, 4), *dot = calloc(rows, 4);
  srand(7);
  for (uint64_t i = 0; i < svl; ++i) a[i] = (int8_t)(rand() % 255 - 127), b[i] = (int8_t)(rand() % 255 - 127);
  smopa_tile(a, b, tile, rows);
  sdot_streaming(a, b, dot);
  int bad = 0, bad_dot = 0;
  for (uint64_t i = 0; i < rows; ++i) {
    int32_t d = 0;
    for (int k = 0; k < 4; ++k) d += a[4 * i + k] * b[4 * i + k];
    if (dot[i] != d) ++bad_dot;
    for (uint64_t j = 0; j < rows; ++j) {
      int32_t ref = 0;
      for (int k = 0; k < 4; ++k) ref += a[4 * i + k] * b[4 * j + k];
      if (tile[i * rows + j] != ref) {
        if (bad < 8)
          printf("  ZA0.S[%llu][%llu] = %d, expected %d\n", (unsigned long long)i, (unsigned long long)j,
                 tile[i * rows + j], ref);
        ++bad;
      }
    }
  }
  printf("SVL %llu bit: SMOPA (int8 -> int32, 4-way) %d/%llu tile elements wrong; streaming SDOT %d/%llu wrong\n",
         (unsigned long long)svl * 8, bad, (unsigned long long)(rows * rows), bad_dot, (unsigned long long)rows);
  return bad || bad_dot ? 1 : 0;
}
