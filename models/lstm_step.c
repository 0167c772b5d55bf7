/* One LSTM time step's elementwise work, fused into a single pass, for models/lstm.py's loop (equations (1)-(6)
 * and their backward pass). The matrix products stay torch's; what this file replaces is a dozen separate torch
 * operations per step, each a pass over memory plus Python overhead. models/step_kernel.py compiles it (with
 * -ffast-math, so that the compiler vectorises exp and tanh) and calls it through ctypes.
 *
 * Layouts (row-major, one row per batch element; H hidden units):
 *   pre     (B, 4H)  gate pre-activations [g | i | f | o], unscaled
 *   c       (B, H)   c(t-1) in, c(t) out
 *   h       (B, ·)   h(t) out, rows h_stride apart (a slice of xh, the next step's matmul input)
 *   D       (B, 4H)  d gate / d pre times its partner: [(1-g^2) i, i(1-i) g, f(1-f) c(t-1), o(1-o) tanh c(t)]
 *   forget  (B, H)   f(t), through (B, H): o (1 - tanh(c)^2), how dL/dh(t) reaches c(t)
 * backward: gc (B, H) holds dL/dc(t+1) in and dL/dc(t) out; gh rows gh_stride apart; gpre (B, 4H) = dL/dpre.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define DEFINE_STEPS(T, SUFFIX, EXP, TANH, ONE)                                                                 \
  void lstm_forward_step_##SUFFIX(const T *pre, T *c, T *h, int64_t h_stride, T *D, T *forget, T *through,     \
                                  int64_t B, int64_t H) {                                                      \
    for (int64_t b = 0; b < B; ++b) {                                                                          \
      const T *p = pre + b * 4 * H;                                                                            \
      T *cb = c + b * H, *hb = h + b * h_stride, *db = D + b * 4 * H, *fb = forget + b * H,                    \
        *tb = through + b * H;                                                                                 \
      _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) {                                                    \
        T g = TANH(p[j]);                                            /* (1) */                                \
        T i = ONE / (ONE + EXP(-p[H + j]));                          /* (2) */                                \
        T f = ONE / (ONE + EXP(-p[2 * H + j]));                      /* (3) */                                \
        T o = ONE / (ONE + EXP(-p[3 * H + j]));                      /* (4) */                                \
        T c_prev = cb[j], c_new = g * i + c_prev * f;                /* (5) */                                \
        T tanh_c = TANH(c_new);                                                                                \
        hb[j] = tanh_c * o;                                          /* (6) */                                \
        cb[j] = c_new;                                                                                         \
        db[j] = (ONE - g * g) * i;                                                                             \
        db[H + j] = i * (ONE - i) * g;                                                                         \
        db[2 * H + j] = f * (ONE - f) * c_prev;                                                                \
        db[3 * H + j] = o * (ONE - o) * tanh_c;                                                                \
        fb[j] = f;                                                                                             \
        tb[j] = (ONE - tanh_c * tanh_c) * o;                                                                   \
      }                                                                                                        \
    }                                                                                                          \
  }                                                                                                            \
                                                                                                               \
  /* forget_next = f(t+1), or NULL at the last step (nothing flows back from c(T+1)). */                      \
  void lstm_backward_step_##SUFFIX(const T *D, const T *through, const T *forget_next, const T *gh,            \
                                   int64_t gh_stride, T *gc, T *gpre, int64_t B, int64_t H) {                  \
    for (int64_t b = 0; b < B; ++b) {                                                                          \
      const T *db = D + b * 4 * H, *tb = through + b * H, *ghb = gh + b * gh_stride;                           \
      T *gcb = gc + b * H, *gp = gpre + b * 4 * H;                                                             \
      if (forget_next != NULL) {                                                                               \
        const T *fb = forget_next + b * H;                                                                     \
        _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) gcb[j] = gcb[j] * fb[j] + ghb[j] * tb[j];          \
      } else {                                                                                                 \
        _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) gcb[j] = ghb[j] * tb[j];                           \
      }                                                                                                        \
      _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) {                                                    \
        gp[j] = db[j] * gcb[j];                                                                                \
        gp[H + j] = db[H + j] * gcb[j];                                                                        \
        gp[2 * H + j] = db[2 * H + j] * gcb[j];                                                                \
        gp[3 * H + j] = db[3 * H + j] * ghb[j];                                                                \
      }                                                                                                        \
    }                                                                                                          \
  }

DEFINE_STEPS(float, f32, expf, tanhf, 1.0f)
DEFINE_STEPS(double, f64, exp, tanh, 1.0)
