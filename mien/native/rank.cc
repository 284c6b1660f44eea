// The mien.native._rank extension: the store's exact search finish (rank.h). Its own
// extension, so that a machine without gRPC C++ (no _grpcpp) still has it: it needs
// only a C++ compiler and pybind11, which the build already requires.
#include "rank.h"

PYBIND11_MODULE(_rank, m) {
  m.doc() = "mien's compiled exact finish of an unfiltered expression search (mien/engine/store)";
  mien_native::InitRank(m);
}
