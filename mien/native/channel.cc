// mien's native client channel: unary calls through gRPC C++ on raw bytes.
//
// Why: grpcio's Python client adds about 0.15-0.25 ms to every round trip on
// the 2-core reference VM. Here the calling thread waits on its own
// completion queue, so it reads the reply itself: no hand-off to another
// thread. The GIL is released while the call is in flight. Streaming calls
// stay on grpcio (mien.clients.native_stub uses this only for unary methods).
//
// Replicas: the target may be gRPC's address list ("ipv4:h1:p1,h2:p2",
// "ipv6:...") or a "dns:" name; with a load-balancing policy ("round_robin")
// and the service config mien.clients.replica_targets builds (the retry on
// UNAVAILABLE), this channel balances exactly as the grpcio channel does.

#include "common.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include <chrono>
#include <memory>
#include <optional>

namespace mien_native {
namespace {

class Channel {
 public:
  // root_pem: with tls, the CA certificates to trust ("" = gRPC's default roots).
  // lb_policy, service_config (JSON), authority: "" leaves gRPC's defaults.
  Channel(const std::string& target, bool tls, const std::string& root_pem, int max_message_bytes,
          const std::string& lb_policy, const std::string& service_config,
          const std::string& authority) {
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    if (tls) {
      grpc::SslCredentialsOptions options;
      options.pem_root_certs = root_pem;
      credentials = grpc::SslCredentials(options);
    } else {
      credentials = grpc::InsecureChannelCredentials();
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(max_message_bytes);
    args.SetMaxSendMessageSize(max_message_bytes);
    if (!lb_policy.empty()) args.SetLoadBalancingPolicyName(lb_policy);
    if (!service_config.empty()) {
      args.SetServiceConfigJSON(service_config);
      args.SetInt(GRPC_ARG_ENABLE_RETRIES, 1);  // the config's retryPolicy needs retries on
    }
    // an address list has no host name: the :authority (and TLS name) replicas expect
    if (!authority.empty()) args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, authority);
    channel_ = grpc::CreateCustomChannel(target, credentials, args);
    stub_ = std::make_unique<grpc::GenericStub>(channel_);
  }

  // One unary call: (status code, details, reply bytes or None, google.rpc.Status bytes).
  py::tuple Unary(const std::string& method, py::bytes request, py::object metadata,
                  std::optional<double> timeout_s) {
    grpc::ClientContext context;
    if (timeout_s) {
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::microseconds(static_cast<int64_t>(*timeout_s * 1e6)));
    }
    if (!metadata.is_none()) {
      for (auto item : metadata) {
        auto pair = item.cast<py::tuple>();
        context.AddMetadata(pair[0].cast<std::string>(), pair[1].cast<std::string>());
      }
    }
    char* data;
    Py_ssize_t size;
    if (PyBytes_AsStringAndSize(request.ptr(), &data, &size) != 0) throw py::error_already_set();
    grpc::ByteBuffer in = ToBuffer(data, static_cast<size_t>(size));
    grpc::ByteBuffer out;
    grpc::Status status;
    {
      py::gil_scoped_release nogil;
      grpc::CompletionQueue cq;
      auto call = stub_->PrepareUnaryCall(&context, method, in, &cq);
      call->StartCall();
      call->Finish(&out, &status, reinterpret_cast<void*>(1));
      void* tag;
      bool ok;
      cq.Next(&tag, &ok);  // the only tag: the call's end
      cq.Shutdown();
      while (cq.Next(&tag, &ok)) {
      }
    }
    if (!status.ok()) {
      return py::make_tuple(static_cast<int>(status.error_code()), status.error_message(), py::none(),
                            py::bytes(status.error_details()));
    }
    return py::make_tuple(0, std::string(), py::bytes(ToString(out)), py::bytes());
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

}  // namespace

void InitChannel(py::module_& m) {
  py::class_<Channel>(m, "Channel")
      .def(py::init<const std::string&, bool, const std::string&, int, const std::string&,
                    const std::string&, const std::string&>(),
           py::arg("target"), py::arg("tls"), py::arg("root_pem"), py::arg("max_message_bytes"),
           py::arg("lb_policy") = "", py::arg("service_config") = "", py::arg("authority") = "")
      .def("unary", &Channel::Unary, py::arg("method"), py::arg("request"), py::arg("metadata"),
           py::arg("timeout_s"));
  // this build's Channel takes lb_policy/service_config/authority (an older .so does not)
  m.attr("CHANNEL_BALANCES") = true;
}

}  // namespace mien_native
