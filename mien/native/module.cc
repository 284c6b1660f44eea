// The mien.native._grpcpp extension: gRPC C++ for the server front (front.cc)
// and the client channel (channel.cc). The store's exact finish is mien.native._rank (rank.cc).
#include "common.h"

PYBIND11_MODULE(_grpcpp, m) {
  m.doc() = "mien's gRPC C++ bindings: the server front and the client channel (raw bytes in and out)";
  mien_native::InitFront(m);
  mien_native::InitChannel(m);
  m.attr("GRPC_VERSION") = grpc::Version();
}
