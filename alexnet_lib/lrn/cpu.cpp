// Local response normalisation across channels (AlexNet §3.3), fused for the CPU.
//
//   forward:   s_c = k + alpha * sum_{j in window(c)} x_j^2,   y_c = x_c * s_c^-beta
//   backward:  dx_j = g_j s_j^-beta - 2 alpha beta x_j sum_{i: j in window(i)} g_i x_i s_i^(-beta-1)
//
// window(c) = c - size/2 .. c + (size-1)/2 inside the channel's group (tower), channels past
// the edge counting as zero: torch.nn.LocalResponseNorm's window. alpha is the effective
// alpha (already divided by size where the convention says so).
//
// The tensor is walked in memory order and each value is read from memory once; the window
// sums happen in small buffers that stay in cache. The forward pass reads x and writes y
// (2 passes over memory), the backward pass reads x and the incoming gradient and writes dx
// (3 passes): s is recomputed from x instead of being stored.
// Values are computed in float for bfloat16 and half tensors, in the tensor's type otherwise.
// Both memory layouts: NCHW (any number of trailing dims) and channels_last (NHWC).
//
// Built at first use by alexnet_lib/lrn_cpu.py, which registers the autograd formula and the
// shapes for torch.compile; the ops are alexnet_lib::lrn_forward and alexnet_lib::lrn_backward.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// Loads and stores that convert to the type the arithmetic is done in. bfloat16 is
// converted bit by bit (round to nearest even) so the loops stay vectorisable.
template <typename T> struct Acc { using type = T; };
template <> struct Acc<c10::BFloat16> { using type = float; };
template <> struct Acc<c10::Half> { using type = float; };

inline float load(const c10::BFloat16& v) {
  uint32_t bits = static_cast<uint32_t>(v.x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline void store(c10::BFloat16& dst, float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  dst.x = static_cast<uint16_t>(f != f ? 0x7fc0u : rounded);
}
inline float load(const c10::Half& v) { return static_cast<float>(v); }
inline void store(c10::Half& dst, float f) { dst = c10::Half(f); }
inline float load(const float& v) { return v; }
inline void store(float& dst, float f) { dst = f; }
inline double load(const double& v) { return v; }
inline void store(double& dst, double f) { dst = f; }

// Positions per NCHW run: a few rows of this length (the ring buffers) stay in L1/L2.
constexpr int64_t kMaxRun = 4096;
// Values below which a tensor is not split between threads (ATen's own choice): waking the
// other threads costs more than they save, and much more on a busy machine.
constexpr int64_t kGrain = 32768;

struct Params {
  int64_t size, before, groups;  // window: `before` channels before c, size - 1 - before after it
  double alpha, beta, k;
};

// With s = k + alpha * acc[p]: inv[p] = s^-beta and, if inv1 is given, inv1[p] = s^(-beta-1)
// (inv may be acc itself). For the paper's beta = 3/4 (the Fast case), with r = 1/sqrt(s):
// s^-beta = r * sqrt(r) and s^(-beta-1) = s^-beta * r * r; any other beta goes through
// std::pow (correct, slower).
template <bool Fast, typename A>
inline void powers(const A* acc, A* inv, A* __restrict inv1, int64_t len, A k, A alpha, A beta) {
  for (int64_t p = 0; p < len; ++p) {
    const A s = k + alpha * acc[p];
    A r = A(1) / std::sqrt(s), y;
    if constexpr (Fast)
      y = r * std::sqrt(r);
    else
      y = std::pow(s, -beta);
    inv[p] = y;
    if (inv1 != nullptr) inv1[p] = Fast ? y * r * r : y / s;
  }
}

#if defined(__AVX2__) && defined(__FMA__)
// float with beta = 3/4: the square roots and the division above all queue for the one divider
// unit (about 2 cycles a value, more than the memory takes). Here only multiplies: r = 1/sqrt(s)
// and s^(1/4) = 1/sqrt(r) from the approximate reciprocal square root; then y = r^2 s^(1/4),
// about s^(-3/4), gets one Newton step for s^3 y^4 = 1: y (5 - s^3 y^4) / 4, which squares its
// relative error e (to 2.5 e^2) and leaves it within a float ulp or two of s^(-3/4). AVX-512's
// approximation is good to 2^-14, so e is ~2e-4 and the step is enough; AVX2's only to 2^-12,
// so both roots get a Newton step of their own first, r (3 - s r^2) / 2. s^(-beta-1) needs r
// itself to float accuracy: one more step there.
#if defined(__AVX512F__)
struct V {
  using T = __m512;
  static constexpr int n = 16;
  static constexpr bool rough = false;  // rsqrt good to 2^-14
  static T set(float v) { return _mm512_set1_ps(v); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }    // a b + c
  static T fnmadd(T a, T b, T c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a b
  static T rsqrt(T a) { return _mm512_rsqrt14_ps(a); }
};
#else
struct V {
  using T = __m256;
  static constexpr int n = 8;
  static constexpr bool rough = true;  // rsqrt good to 1.5 * 2^-12
  static T set(float v) { return _mm256_set1_ps(v); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T fnmadd(T a, T b, T c) { return _mm256_fnmadd_ps(a, b, c); }
  static T rsqrt(T a) { return _mm256_rsqrt_ps(a); }
};
#endif

inline V::T newton_rsqrt(V::T s, V::T r) {  // r (3 - s r^2) / 2
  return V::mul(r, V::fnmadd(V::mul(V::mul(s, V::set(0.5f)), r), r, V::set(1.5f)));
}

inline void powers_075(const float* acc, float* inv, float* inv1, V::T k, V::T alpha) {
  const V::T s = V::fmadd(alpha, V::load(acc), k);
  V::T r = V::rsqrt(s);
  if (V::rough) r = newton_rsqrt(s, r);
  const V::T q = V::rough ? newton_rsqrt(r, V::rsqrt(r)) : V::rsqrt(r);  // s^(1/4)
  const V::T y = V::mul(V::mul(r, r), q);
  const V::T sy = V::mul(s, y);
  const V::T residual = V::fnmadd(V::mul(V::mul(sy, sy), sy), y, V::set(1.0f));  // 1 - s^3 y^4
  const V::T out = V::fmadd(V::mul(y, V::set(0.25f)), residual, y);
  V::store(inv, out);
  if (inv1 != nullptr) {
    const V::T r1 = newton_rsqrt(s, r);
    V::store(inv1, V::mul(out, V::mul(r1, r1)));
  }
}

template <>
inline void powers<true, float>(const float* acc, float* inv, float* __restrict inv1, int64_t len, float k,
                                float alpha, float) {
  const V::T vk = V::set(k), va = V::set(alpha);
  int64_t p = 0;
  for (; p + V::n <= len; p += V::n) powers_075(acc + p, inv + p, inv1 == nullptr ? nullptr : inv1 + p, vk, va);
  if (p < len) {  // the last few values: the same arithmetic on a padded vector
    float s[V::n] = {0}, out[V::n], out1[V::n];
    std::copy(acc + p, acc + len, s);
    powers_075(s, out, out1, vk, va);
    std::copy(out, out + (len - p), inv + p);
    if (inv1 != nullptr) std::copy(out1, out1 + (len - p), inv1 + p);
  }
}
#endif

// acc[p] = sum_{d < size} rows[d][p] for p < len: a window sum, each row being one channel's
// values (a shifted pointer or a buffer row). The common sizes are unrolled, so that each
// acc[p] is summed in a register.
template <int Size, typename A>
inline void sum_rows_fixed(const A* const* rows, A* __restrict acc, int64_t len) {
  const A* r[Size];
  for (int d = 0; d < Size; ++d) r[d] = rows[d];
  for (int64_t p = 0; p < len; ++p) {
    A sum = r[0][p];
    for (int d = 1; d < Size; ++d) sum += r[d][p];
    acc[p] = sum;
  }
}

template <typename A>
inline void sum_rows(const A* const* rows, int64_t size, A* __restrict acc, int64_t len) {
  switch (size) {
    case 3: return sum_rows_fixed<3>(rows, acc, len);
    case 5: return sum_rows_fixed<5>(rows, acc, len);
    case 9: return sum_rows_fixed<9>(rows, acc, len);
    default: break;
  }
  for (int64_t p = 0; p < len; ++p) acc[p] = rows[0][p];
  for (int64_t d = 1; d < size; ++d) {
    const A* __restrict next = rows[d];
    for (int64_t p = 0; p < len; ++p) acc[p] += next[p];
  }
}

// The arithmetic shared by both layouts, on `len` values of one channel, acc holding the
// window sums of x^2 (overwritten):
//   y = x s^-beta, with s = k + alpha acc                              (forward)
//   inv = s^-beta and t = g x s^(-beta-1)                              (backward, first half)
//   dx = g inv - 2 alpha beta x acc', acc' the transposed window sum of t  (second half)
template <typename T, bool Fast>
struct Formula {
  using A = typename Acc<T>::type;
  A alpha, beta, k, coef;
  explicit Formula(const Params& q)
      : alpha(static_cast<A>(q.alpha)), beta(static_cast<A>(q.beta)), k(static_cast<A>(q.k)),
        coef(static_cast<A>(-2.0 * q.alpha * q.beta)) {}

  void squares(const T* __restrict x, A* __restrict sq, int64_t len) const {
    for (int64_t p = 0; p < len; ++p) {
      A v = load(x[p]);
      sq[p] = v * v;
    }
  }
  void output(const T* __restrict x, A* __restrict acc, T* __restrict y, int64_t len) const {
    powers<Fast>(acc, acc, static_cast<A*>(nullptr), len, k, alpha, beta);
    for (int64_t p = 0; p < len; ++p) store(y[p], load(x[p]) * acc[p]);
  }
  void terms(const T* __restrict x, const T* __restrict g, A* __restrict acc, A* __restrict inv,
             A* __restrict t, int64_t len) const {
    powers<Fast>(acc, inv, t, len, k, alpha, beta);
    for (int64_t p = 0; p < len; ++p) t[p] *= load(g[p]) * load(x[p]);
  }
  void gradient(const T* __restrict x, const T* __restrict g, const A* __restrict inv, const A* __restrict acc,
                T* __restrict dx, int64_t len) const {
    for (int64_t p = 0; p < len; ++p) store(dx[p], load(g[p]) * inv[p] + coef * load(x[p]) * acc[p]);
  }
};

// NCHW: one group's channels at a run of `len` positions (element (c, p) at c * stride + p),
// walked channel by channel, so memory is read in order. Ring buffers hold the last `size`
// rows of squares (and, backward, of inv and t); channels past the edge are a zero row.
// Row c of x (and g) is read again a few rows after it was loaded, from cache.
template <typename T, bool Fast>
struct ChannelWalk {
  using A = typename Acc<T>::type;
  Formula<T, Fast> f;
  int64_t rows, size, before, after, ld;
  std::vector<A> sq, inv, t, acc, zero;
  std::vector<const A*> window;

  ChannelWalk(int64_t rows_, int64_t ld_, const Params& q, bool backward)
      : f(q), rows(rows_), size(q.size), before(q.before), after(q.size - 1 - q.before), ld(ld_),
        sq(q.size * ld_), acc(ld_), zero(ld_, A(0)), window(q.size) {
    if (backward) {
      inv.resize(q.size * ld_);
      t.resize(q.size * ld_);
    }
  }

  A* slot(std::vector<A>& ring, int64_t c) { return ring.data() + (c % size) * ld; }
  // acc = the window sum of ring rows first .. first + size - 1, rows outside 0 .. rows - 1
  // being zero
  void sum(std::vector<A>& ring, int64_t first, int64_t len) {
    for (int64_t d = 0; d < size; ++d) {
      const int64_t c = first + d;
      window[d] = (c < 0 || c >= rows) ? zero.data() : slot(ring, c);
    }
    sum_rows(window.data(), size, acc.data(), len);
  }

  void forward(const T* x, T* y, int64_t stride, int64_t len) {
    for (int64_t last = 0; last < rows + after; ++last) {  // `last`: the newest row loaded
      if (last < rows) f.squares(x + last * stride, slot(sq, last), len);
      const int64_t c = last - after;
      if (c < 0) continue;
      sum(sq, c - before, len);
      f.output(x + c * stride, acc.data(), y + c * stride, len);
    }
  }

  void backward(const T* x, const T* g, T* dx, int64_t stride, int64_t len) {
    for (int64_t last = 0; last < rows + size - 1; ++last) {
      if (last < rows) f.squares(x + last * stride, slot(sq, last), len);
      const int64_t c = last - after;  // the row whose s, inv and t are now known
      if (c >= 0 && c < rows) {
        sum(sq, c - before, len);
        f.terms(x + c * stride, g + c * stride, acc.data(), slot(inv, c), slot(t, c), len);
      }
      const int64_t j = c - before;  // the row whose transposed window of t is now complete
      if (j < 0) continue;
      sum(t, j - after, len);
      f.gradient(x + j * stride, g + j * stride, slot(inv, j), acc.data(), dx + j * stride, len);
    }
  }
};

// channels_last: one group's channels at one position are contiguous and the window runs
// along them: the rows of the window sum are shifted pointers into one zero-padded buffer.
template <typename T, bool Fast>
struct ChannelRun {
  using A = typename Acc<T>::type;
  Formula<T, Fast> f;
  int64_t rows, size, before, after;
  std::vector<A> sq, t, inv, acc;
  std::vector<const A*> window_sq, window_t;

  ChannelRun(int64_t rows_, const Params& q)
      : f(q), rows(rows_), size(q.size), before(q.before), after(q.size - 1 - q.before), sq(rows_ + q.size - 1, A(0)),
        t(rows_ + q.size - 1, A(0)), inv(rows_), acc(rows_), window_sq(q.size), window_t(q.size) {
    for (int64_t d = 0; d < size; ++d) {  // the padding at the edges stays zero
      window_sq[d] = sq.data() + d;
      window_t[d] = t.data() + d;
    }
  }

  void forward(const T* x, T* y) {
    f.squares(x, sq.data() + before, rows);
    sum_rows(window_sq.data(), size, acc.data(), rows);
    f.output(x, acc.data(), y, rows);
  }

  void backward(const T* x, const T* g, T* dx) {
    f.squares(x, sq.data() + before, rows);
    sum_rows(window_sq.data(), size, acc.data(), rows);
    f.terms(x, g, acc.data(), inv.data(), t.data() + after, rows);
    sum_rows(window_t.data(), size, acc.data(), rows);
    f.gradient(x, g, inv.data(), acc.data(), dx, rows);
  }
};

// NCHW: (batch, groups, channels per group, positions). A task is one group of one image at
// a run of positions (all of them when they fit, else runs of kMaxRun; shorter runs when
// there are too few tasks for the threads). grad == nullptr: the forward pass (out = y),
// else the backward pass (out = dx).
template <typename T, bool Fast>
void run_nchw(const T* x, const T* grad, T* out, int64_t n, int64_t c, int64_t positions, const Params& q) {
  const int64_t rows = c / q.groups, slabs = n * q.groups;
  const int64_t wanted_runs = std::max<int64_t>(1, (4 * at::get_num_threads() + slabs - 1) / slabs);
  int64_t run = std::min(kMaxRun, (positions + wanted_runs - 1) / wanted_runs);
  run = std::min(positions, (run + 15) / 16 * 16);
  const int64_t runs = (positions + run - 1) / run;
  const int64_t grain = std::max<int64_t>(1, kGrain / (rows * run));
  at::parallel_for(0, slabs * runs, grain, [&](int64_t begin, int64_t end) {
    ChannelWalk<T, Fast> walk(rows, run, q, grad != nullptr);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t p0 = (task % runs) * run, len = std::min(run, positions - p0);
      const int64_t base = (task / runs) * rows * positions + p0;
      if (grad == nullptr)
        walk.forward(x + base, out + base, positions, len);
      else
        walk.backward(x + base, grad + base, out + base, positions, len);
    }
  });
}

// channels_last: (positions, groups, channels per group), channels contiguous; one group at
// one position at a time.
template <typename T, bool Fast>
void run_nhwc(const T* x, const T* grad, T* out, int64_t positions, int64_t c, const Params& q) {
  const int64_t rows = c / q.groups;
  at::parallel_for(0, positions, std::max<int64_t>(16, kGrain / c), [&](int64_t begin, int64_t end) {
    ChannelRun<T, Fast> one(rows, q);
    for (int64_t g0 = begin * c; g0 < end * c; g0 += rows) {
      if (grad == nullptr)
        one.forward(x + g0, out + g0);
      else
        one.backward(x + g0, grad + g0, out + g0);
    }
  });
}

bool is_nhwc(const at::Tensor& x) {
  return x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

at::Tensor run(const at::Tensor& x_in, const at::Tensor* grad_in, int64_t size, double alpha, double beta,
               double k, int64_t groups) {
  TORCH_CHECK(x_in.device().is_cpu(), "alexnet_lib::lrn: expected a CPU tensor, got ", x_in.device());
  TORCH_CHECK(x_in.dim() >= 3, "alexnet_lib::lrn: expected (N, C, ...) input, got ", x_in.dim(), " dims");
  TORCH_CHECK(size >= 1 && groups >= 1 && x_in.size(1) % groups == 0,
              "alexnet_lib::lrn: size and groups must be >= 1 and groups must divide the channels");
  const bool nhwc = is_nhwc(x_in);
  const auto format = nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const at::Tensor x = x_in.contiguous(format);
  at::Tensor grad;
  if (grad_in != nullptr) {
    TORCH_CHECK(grad_in->sizes() == x.sizes() && grad_in->scalar_type() == x.scalar_type(),
                "alexnet_lib::lrn_backward: the gradient must have the input's shape and dtype");
    grad = grad_in->contiguous(format);
  }
  at::Tensor out = at::empty_like(x);  // x's layout, as the shape function in lrn_cpu.py says
  const Params q{size, size / 2, groups, alpha, beta, k};
  const int64_t n = x.size(0), c = x.size(1), positions = x.numel() / std::max<int64_t>(1, n * c);
  if (x.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "alexnet_lib_lrn", [&] {
    const scalar_t* g = grad_in != nullptr ? grad.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const bool fast = beta == 0.75;
    if (nhwc && fast)
      run_nhwc<scalar_t, true>(xp, g, op, n * positions, c, q);
    else if (nhwc)
      run_nhwc<scalar_t, false>(xp, g, op, n * positions, c, q);
    else if (fast)
      run_nchw<scalar_t, true>(xp, g, op, n, c, positions, q);
    else
      run_nchw<scalar_t, false>(xp, g, op, n, c, positions, q);
  });
  return out;
}

at::Tensor lrn_forward(const at::Tensor& x, int64_t size, double alpha, double beta, double k, int64_t groups) {
  return run(x, nullptr, size, alpha, beta, k, groups);
}

at::Tensor lrn_backward(const at::Tensor& grad, const at::Tensor& x, int64_t size, double alpha, double beta,
                        double k, int64_t groups) {
  return run(x, &grad, size, alpha, beta, k, groups);
}

}  // namespace

TORCH_LIBRARY(alexnet_lib, m) {
  m.def("lrn_forward(Tensor x, int size, float alpha, float beta, float k, int groups) -> Tensor");
  m.def("lrn_backward(Tensor grad, Tensor x, int size, float alpha, float beta, float k, int groups) -> Tensor");
}

TORCH_LIBRARY_IMPL(alexnet_lib, CPU, m) {
  m.impl("lrn_forward", &lrn_forward);
  m.impl("lrn_backward", &lrn_backward);
}
