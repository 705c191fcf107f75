// One int8 Linear (dynamically quantized int8 activations per row, int8 weights per output
// channel: XNNPACK's qp8-f32-qc8w) through three KleidiAI kernels from the ExecuTorch 1.5.1
// wheel's libexecutorch_backend_xnnpack.so, against a plain-C float reference.
//   m rows (1 = a decode step: GEMV; 4 = beam 4), n outputs, k inputs.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rhs_params { int32_t lhs_zero_point; float scale_multiplier; };
size_t kai_get_lhs_packed_size_lhs_quant_pack_qai8dxp_f32(size_t m, size_t k, size_t mr, size_t kr, size_t sr);
void kai_run_lhs_quant_pack_qai8dxp_f32(size_t m, size_t k, size_t mr, size_t kr, size_t sr, size_t m_idx_start,
                                        const float* lhs, size_t lhs_stride, void* lhs_packed);
size_t kai_get_rhs_packed_size_rhs_pack_nxk_qsi8cxp_qsi8cx_neon(size_t n, size_t k, size_t nr, size_t kr, size_t sr);
void kai_run_rhs_pack_nxk_qsi8cxp_qsi8cx_neon(size_t groups, size_t n, size_t k, size_t nr, size_t kr, size_t sr,
                                              const int8_t* rhs, const float* bias, const float* scale, void* packed,
                                              size_t extra, const struct rhs_params* params);
typedef size_t (*get_fn)(void);
typedef void (*run_fn)(size_t m, size_t n, size_t k, const void* lhs, const void* rhs, float* dst, size_t row,
                       size_t col, float lo, float hi);
#define DECL(name) \
  size_t kai_get_mr_##name(void); size_t kai_get_nr_##name(void); size_t kai_get_kr_##name(void); \
  size_t kai_get_sr_##name(void); void kai_run_##name(size_t, size_t, size_t, const void*, const void*, float*, \
  size_t, size_t, float, float);
DECL(matmul_clamp_f32_qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod)
DECL(matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme_dot)
DECL(matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme_mopa)
struct kernel { const char* name; get_fn mr, nr, kr, sr; run_fn run; int sme; };
#define K(name, sme) {#name, kai_get_mr_##name, kai_get_nr_##name, kai_get_kr_##name, kai_get_sr_##name, kai_run_##name, sme}

static double run(const struct kernel* kn, size_t m, size_t n, size_t k, const float* x, const int8_t* w,
                  const float* scale, const float* bias, const float* ref, float* out) {
  size_t mr = kn->mr(), nr = kn->nr(), kr = kn->kr(), sr = kn->sr();
  void* lhs = calloc(1, kai_get_lhs_packed_size_lhs_quant_pack_qai8dxp_f32(m, k, mr, kr, sr));
  void* rhs = calloc(1, kai_get_rhs_packed_size_rhs_pack_nxk_qsi8cxp_qsi8cx_neon(n, k, nr, kr, sr));
  struct rhs_params p = {1, 1.0f};
  kai_run_lhs_quant_pack_qai8dxp_f32(m, k, mr, kr, sr, 0, x, k * sizeof(float), lhs);
  kai_run_rhs_pack_nxk_qsi8cxp_qsi8cx_neon(1, n, k, nr, kr, sr, w, bias, scale, rhs, 0, &p);
  kn->run(m, n, k, lhs, rhs, out, n * sizeof(float), sizeof(float), -INFINITY, INFINITY);
  double err = 0, mag = 0;
  for (size_t i = 0; i < m * n; ++i) mag = fmax(mag, fabs(ref[i]));
  int bad = 0; char cols[256] = "";
  for (size_t i = 0; i < m * n; ++i) {
    err = fmax(err, fabs(out[i] - ref[i]));
    if (fabs(out[i] - ref[i]) > 0.02 * mag) { if (bad < 12) snprintf(cols + strlen(cols), sizeof cols - strlen(cols), " %zu,%zu", i / n, i % n); ++bad; }
  }
  if (bad) printf("   %s: %d/%zu outputs off; (row,col):%s\n", kn->name, bad, m * n, cols);
  free(lhs), free(rhs);
  return err / mag;
}

int main(int argc, char** argv) {
  int with_sme = argc > 1 && !strcmp(argv[1], "sme");
  size_t n = 64, k = 128, ms[] = {1, 4, 7};
  struct kernel ks[] = {K(matmul_clamp_f32_qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod, 0),
                        K(matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme_dot, 1),
                        K(matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme_mopa, 1)};
  srand(7);
  int8_t* w = malloc(n * k);
  float *scale = malloc(n * 4), *bias = malloc(n * 4), *x = malloc(7 * k * 4), *ref = malloc(7 * n * 4),
        *out = malloc(7 * n * 4);
  for (size_t i = 0; i < n * k; ++i) w[i] = (int8_t)(rand() % 255 - 127);
  for (size_t j = 0; j < n; ++j) scale[j] = 0.01f + 0.001f * (float)(j % 7), bias[j] = 0.1f * (float)(j % 5) - 0.2f;
  for (size_t i = 0; i < 7 * k; ++i) x[i] = (float)(rand() % 2001 - 1000) / 500.0f;
  for (int t = 0; t < 3; ++t) {
    size_t m = ms[t];
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < n; ++j) {
        double acc = bias[j];
        for (size_t q = 0; q < k; ++q) acc += (double)x[i * k + q] * w[j * k + q] * scale[j];
        ref[i * n + j] = (float)acc;
      }
    for (int kk = 0; kk < 3; ++kk) {
      if (ks[kk].sme && !with_sme) continue;
      memset(out, 0, 7 * n * 4);
      double rel = run(&ks[kk], m, n, k, x, w, scale, bias, ref, out);
      printf("m=%zu %-62s max|err|/max|ref| = %.5f  out[0..2] = %.4f %.4f %.4f  ref = %.4f %.4f %.4f\n", m,
             ks[kk].name, rel, out[0], out[1], out[2], ref[0], ref[1], ref[2]);
    }
  }
  return 0;
}
