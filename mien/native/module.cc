// The mien.native._grpcpp extension: gRPC C++ for the server front (front.cc)
// and the client channel (channel.cc); and the store's exact search finish (rank.h),
// since this is the one compiled extension mien builds.
#include "common.h"
#include "rank.h"

PYBIND11_MODULE(_grpcpp, m) {
  m.doc() = "mien's gRPC C++ bindings: the server front and the client channel (raw bytes in and out)";
  mien_native::InitFront(m);
  mien_native::InitChannel(m);
  mien_native::InitRank(m);
  m.attr("GRPC_VERSION") = grpc::Version();
}
