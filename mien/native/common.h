// Helpers shared by the native server front and the native client channel.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

namespace py = pybind11;

extern "C" int _Py_IsFinalizing(void);

namespace mien_native {

// Holds the GIL for a scope on any thread. A native thread keeps one Python
// thread state for its whole life (the first acquire takes an extra
// reference), so per-thread Python state such as threading.local survives
// between calls and no thread state is built per call.
class GilForNativeThread {
 public:
  GilForNativeThread() : state_(PyGILState_Ensure()) {
    thread_local bool kept = false;
    if (!kept) {
      kept = true;
      PyGILState_Ensure();  // never released: pins this thread's state
    }
  }
  ~GilForNativeThread() { PyGILState_Release(state_); }
  GilForNativeThread(const GilForNativeThread&) = delete;
  GilForNativeThread& operator=(const GilForNativeThread&) = delete;

 private:
  PyGILState_STATE state_;
};

inline std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

inline grpc::ByteBuffer ToBuffer(const char* data, size_t size) {
  grpc::Slice slice(data, size);
  return grpc::ByteBuffer(&slice, 1);
}

void InitFront(py::module_& m);
void InitChannel(py::module_& m);

}  // namespace mien_native
