// The store's exact finish of an unfiltered expression search, in one call
// (mien/engine/store/expression_index.py: FaceIndex.rank does the same in Python).
//
// Why here: a 1M-face search spends ~80 us in FAISS and, in Python, ~50 us more
// on a few dozen candidates (a dozen numpy calls of a few microseconds each on
// the 2-core reference VM). Built as mien.native._rank (rank.cc), which needs no
// gRPC; without it the Python path runs, with the same results (distances within
// float rounding).
//
// Steps, as in Python: bfloat16 squared distances of the candidate rows, the
// k-th of them widened by the bfloat16 error bound (rows.window), the float32
// vectors of the rows inside that window read from the shard files' mapped
// bytes, exact squared distances, and the top k by (distance, face id).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace mien_native {

namespace py = pybind11;

inline float Bf16ToFloat(uint16_t bits) {
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &wide, sizeof out);
  return out;
}

// rows.window: every face whose exact distance can be <= the k-th lies within this approximate one
inline double Window(double dk, double eps) {
  double r = std::sqrt(std::max(dk, 0.0)) + 2 * eps;
  return dk + 4 * eps * r + 4 * eps * eps;
}

// Relative gap under which two distances count as tied: well above the rounding difference of
// two float32 sums of 16 squares (at most ~15 units of 2^-24, relative).
constexpr double kTieRelative = 4e-6;

// (face_id, distance, row) of the top k, or None when a row inside the window has no mapped
// float32 vector, or two of the top k are tied within rounding: the caller then runs the Python
// finish (which reads LMDB, and orders ties exactly as before).
//   q: float32[16]; rows: int64 candidates; bf16: uint16[n, 16]; ids: int64[n];
//   eps: BF16_EPS * the largest row norm; mapped: int64[shards, 3], per mapped shard in row
//   order its first row, end row, and the address of row 0's float32 bytes as if the shard
//   started at row 0 (an array, not a list: a 10M-face store has a hundred shards).
inline py::object ExactTop(py::array_t<float, py::array::c_style> q_arr,
                           py::array_t<int64_t, py::array::c_style> rows_arr,
                           py::array_t<uint16_t, py::array::c_style> bf16_arr,
                           py::array_t<int64_t, py::array::c_style> ids_arr, double eps, int k,
                           py::array_t<int64_t, py::array::c_style> mapped_arr) {
  constexpr int D = 16;
  if (q_arr.size() != D || bf16_arr.ndim() != 2 || bf16_arr.shape(1) != D || k <= 0) return py::none();
  if (mapped_arr.ndim() != 2 || mapped_arr.shape(1) != 3) return py::none();
  const int64_t* mapped = mapped_arr.data();
  const int64_t shards = mapped_arr.shape(0);
  const float* q = q_arr.data();
  const int64_t* rows = rows_arr.data();
  const uint16_t* bf16 = bf16_arr.data();
  const int64_t* ids = ids_arr.data();
  const int64_t n = std::min<int64_t>(bf16_arr.shape(0), ids_arr.size());
  const int64_t m = rows_arr.size();
  if (m == 0) return py::list();

  // The candidates are scattered rows: ask for all their cache lines first, so the misses
  // overlap instead of stalling one row at a time (most of this call's time on a large store).
  for (int64_t i = 0; i < m; ++i) {
    if (rows[i] >= 0 && rows[i] < n) __builtin_prefetch(bf16 + rows[i] * D);
  }
  std::vector<float> d16(m);
  for (int64_t i = 0; i < m; ++i) {
    if (rows[i] < 0 || rows[i] >= n) return py::none();
    const uint16_t* v = bf16 + rows[i] * D;
    float s = 0.0f;
    for (int j = 0; j < D; ++j) {
      float d = Bf16ToFloat(v[j]) - q[j];
      s += d * d;
    }
    d16[i] = s;
  }
  double w = INFINITY;
  if (m > k) {
    std::vector<float> sorted(d16);
    std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end());
    w = Window(sorted[k - 1], eps);
  }

  struct Found {
    float dist;
    int64_t id, row;
  };
  // the mapped float32 bytes of each row inside the window, located (and prefetched) first
  std::vector<std::pair<int64_t, const char*>> inside;
  inside.reserve(m);
  for (int64_t i = 0; i < m; ++i) {
    if (!(static_cast<double>(d16[i]) <= w)) continue;
    const int64_t row = rows[i];
    int64_t lo = 0, hi = shards;  // the last shard whose first row is <= row
    while (lo < hi) {
      int64_t mid = (lo + hi) / 2;
      if (mapped[mid * 3] <= row) lo = mid + 1; else hi = mid;
    }
    if (lo == 0 || row >= mapped[(lo - 1) * 3 + 1]) return py::none();
    const char* at = reinterpret_cast<const char*>(static_cast<uintptr_t>(mapped[(lo - 1) * 3 + 2])) +
                     row * D * sizeof(float);
    __builtin_prefetch(at);
    __builtin_prefetch(ids + row);
    inside.emplace_back(row, at);
  }
  std::vector<Found> found;
  found.reserve(inside.size());
  for (const auto& [row, at] : inside) {
    float e[D];
    std::memcpy(e, at, sizeof e);
    double s = 0.0;  // accumulated in double, rounded once: within float rounding of numpy's float32 sum
    for (int j = 0; j < D; ++j) {
      double d = static_cast<double>(e[j] - q[j]);  // the difference in float32, as numpy's e32 - q
      s += d * d;
    }
    float dist = static_cast<float>(s);
    if (!std::isfinite(dist)) continue;  // a query too large to square (Python drops these too)
    found.push_back({dist, ids[row], row});
  }
  auto by_distance = [](const Found& a, const Found& b) {
    return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
  };
  std::sort(found.begin(), found.end(), by_distance);  // a dozen rows
  const size_t top = std::min<size_t>(found.size(), static_cast<size_t>(k));
  // This sum and numpy's float32 one may differ in the last bits: where two of the top k (or
  // the k-th and the next) are that close, their order is Python's to decide, as before.
  for (size_t i = 0; i < top && i + 1 < found.size(); ++i) {
    if (found[i + 1].dist - found[i].dist <= kTieRelative * found[i + 1].dist) return py::none();
  }
  py::list out(top);
  for (size_t i = 0; i < top; ++i) {
    out[i] = py::make_tuple(found[i].id, static_cast<double>(found[i].dist), found[i].row);
  }
  return std::move(out);
}

inline void InitRank(py::module_& m) {
  m.def("exact_top", &ExactTop, py::arg("q"), py::arg("rows"), py::arg("bf16"), py::arg("ids"), py::arg("eps"),
        py::arg("k"), py::arg("mapped"),
        "The store's exact finish of an unfiltered search: [(face_id, distance, row)] of the top k, "
        "or None when a row in the bfloat16 window has no mapped float32 vector.");
}

}  // namespace mien_native
