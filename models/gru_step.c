/* One GRU time step's elementwise work, fused into a single pass, for models/gru.py's loop (its equations (G1)-(G4)
 * and their backward pass). The matrix products stay torch's; models/step_kernel.py compiles this file (with
 * -ffast-math, so that the compiler vectorises exp and tanh) and calls it through ctypes.
 *
 * Layouts (row-major, one row per batch element; H hidden units; gate blocks in torch.nn.GRU's order r, z, n):
 *   gi      (B, 3H)  W_i* x(t) + b_i*, rows gi_stride apart     gh (B, 3H)  W_h* h(t-1) + b_h*
 *   h_prev  (B, .)   h(t-1), rows h_stride apart; h (B, .) h(t) out, the same stride (slices of the loop's hs)
 *   S       (B, 5H)  what the backward pass needs: [gh_n r(1-r), (h(t-1) - n) z(1-z), (1-z)(1-n^2), r, z]
 * backward: gh_out (B, H) holds dL/dh(t) in, rows g_stride apart; dgi and dgh (B, 3H) get dL/d(gi) and dL/d(gh);
 *   direct (B, H) gets the part of dL/dh(t-1) that does not pass through W_h: dL/dh(t) z.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define DEFINE_STEPS(T, SUFFIX, EXP, TANH, ONE)                                                                 \
  void gru_forward_step_##SUFFIX(const T *gi, int64_t gi_stride, const T *gh, const T *h_prev, T *h,           \
                                 int64_t h_stride, T *S, int64_t B, int64_t H) {                               \
    for (int64_t b = 0; b < B; ++b) {                                                                          \
      const T *xi = gi + b * gi_stride, *hh = gh + b * 3 * H, *hp = h_prev + b * h_stride;                     \
      T *hb = h + b * h_stride, *s = S + b * 5 * H;                                                            \
      _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) {                                                    \
        T r = ONE / (ONE + EXP(-(xi[j] + hh[j])));                          /* (G1) */                        \
        T z = ONE / (ONE + EXP(-(xi[H + j] + hh[H + j])));                  /* (G2) */                        \
        T n = TANH(xi[2 * H + j] + r * hh[2 * H + j]);                      /* (G3) */                        \
        T h_old = hp[j];                                                                                       \
        hb[j] = n + z * (h_old - n);                                        /* (G4) (1-z) n + z h(t-1) */     \
        s[j] = hh[2 * H + j] * r * (ONE - r);                                                                  \
        s[H + j] = (h_old - n) * z * (ONE - z);                                                                \
        s[2 * H + j] = (ONE - z) * (ONE - n * n);                                                              \
        s[3 * H + j] = r;                                                                                      \
        s[4 * H + j] = z;                                                                                      \
      }                                                                                                        \
    }                                                                                                          \
  }                                                                                                            \
                                                                                                               \
  void gru_backward_step_##SUFFIX(const T *S, const T *g, int64_t g_stride, T *dgi, T *dgh, T *direct,         \
                                  int64_t B, int64_t H) {                                                      \
    for (int64_t b = 0; b < B; ++b) {                                                                          \
      const T *s = S + b * 5 * H, *gb = g + b * g_stride;                                                      \
      T *di = dgi + b * 3 * H, *dh = dgh + b * 3 * H, *db = direct + b * H;                                    \
      _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) {                                                    \
        T gj = gb[j];                                                                                          \
        T dn = gj * s[2 * H + j];                                   /* dL/d(pre-activation of n) */           \
        T dr = dn * s[j];                                                                                      \
        T dz = gj * s[H + j];                                                                                  \
        di[j] = dr;                                                                                            \
        di[H + j] = dz;                                                                                        \
        di[2 * H + j] = dn;                                                                                    \
        dh[j] = dr;                                                                                            \
        dh[H + j] = dz;                                                                                        \
        dh[2 * H + j] = dn * s[3 * H + j];                                                                     \
        db[j] = gj * s[4 * H + j];                                                                             \
      }                                                                                                        \
    }                                                                                                          \
  }

DEFINE_STEPS(float, f32, expf, tanhf, 1.0f)
DEFINE_STEPS(double, f64, exp, tanh, 1.0)
