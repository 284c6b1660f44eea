// mien's native gRPC front: the listening socket, HTTP/2 and call handling run
// in gRPC C++; each call's handler is Python (mien.server.native_front), handed raw
// request bytes and returning raw reply bytes.
//
// Why: an empty round trip through grpcio's Python server costs about 0.55 ms
// on the 2-core reference VM against 0.33 ms through gRPC C++. grpcio's server
// moves every call between its polling thread and a worker thread twice, and
// on a VM each move can land on a halted vCPU. Here a small request to a
// method marked "inline" runs its Python handler on the gRPC thread that read
// it (one GIL acquire, no hand-off). Other unary calls (image queries,
// analytics) go to a worker pool so they can block without stalling gRPC;
// each stream gets a thread of its own, up to max_streams.
//
// Lifetime: a Call deletes itself in OnDone, which gRPC calls only after
// Finish; every path below ends in exactly one Finish.

#include "common.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/security/server_credentials.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace mien_native {
namespace {

// A fixed set of threads running queued work: the unary calls that may block.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~WorkerPool() { Stop(); }

  void Submit(std::function<void()> work) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(work));
    }
    cv_.notify_one();
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> work;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        work = std::move(queue_.front());
        queue_.pop_front();
      }
      work();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

// One thread per open stream, up to a limit. A stream (a health watch, an
// indexing run) can stay open for minutes; on the worker pool, a dozen
// watchers would starve every image query.
class StreamThreads {
 public:
  explicit StreamThreads(int limit) : limit_(limit) {}
  ~StreamThreads() { JoinAll(); }

  bool TryStart(std::function<void()> work) {
    std::lock_guard<std::mutex> lock(mu_);
    ReapFinished();
    if (stopping_ || static_cast<int>(threads_.size()) >= limit_) return false;
    auto done = std::make_shared<std::atomic<bool>>(false);
    threads_.push_back({std::thread([work = std::move(work), done] {
                          work();
                          done->store(true);
                        }),
                        done});
    return true;
  }

  void JoinAll() {
    std::vector<Running> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      threads.swap(threads_);
    }
    for (auto& r : threads) r.thread.join();
  }

 private:
  struct Running {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  void ReapFinished() {  // with mu_ held; joining a finished thread returns at once
    for (auto it = threads_.begin(); it != threads_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = threads_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::mutex mu_;
  std::vector<Running> threads_;
  const int limit_;
  bool stopping_ = false;
};

struct Dispatch {
  // a failure may add a 4th (unary) / 3rd (stream) element: a serialized google.rpc.Status,
  // which gRPC C++ sends as the grpc-status-details-bin trailer
  py::object unary;    // (method, request: bytes, call_info) -> (code, details, reply: bytes|None[, status])
  py::object stream;   // (method, StreamHandle, call_info) -> (code, details[, status])
  std::unordered_set<std::string> streaming;   // full method names
  std::unordered_set<std::string> inline_ok;   // may run on the gRPC thread
  size_t inline_max_bytes = 0;
  // unary calls whose request arrived and whose handler has not returned: queued for a
  // worker or running. A shutdown's drain waits for them: a call queued when the drain
  // began gets the grace like a running one.
  mutable std::atomic<int> unanswered{0};
};

class Call;

// What Python sees of a streaming call: blocking read/write, valid only while
// its handler runs.
class StreamHandle {
 public:
  explicit StreamHandle(Call* call) : call_(call) {}
  py::object Read();
  bool Write(py::bytes data);
  bool Cancelled();
  void SetCancelCallback(py::object callback);
  void Detach() { call_ = nullptr; }

 private:
  Call* Checked();
  Call* call_;
};

class Call final : public grpc::ServerGenericBidiReactor {
 public:
  Call(const Dispatch* dispatch, WorkerPool* pool, StreamThreads* streams,
       grpc::GenericCallbackServerContext* ctx)
      : dispatch_(dispatch), pool_(pool), ctx_(ctx), method_(ctx->method()),
        streaming_(dispatch_->streaming.count(method_) > 0), received_(std::chrono::steady_clock::now()) {
    if (streaming_) {
      if (!streams->TryStart([this] { RunStream(); })) {
        Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "the server has too many open streams; try again later"));
      }
    } else {
      StartRead(&request_);
    }
  }

  void OnReadDone(bool ok) override {
    if (streaming_) {
      std::lock_guard<std::mutex> lock(mu_);
      read_ok_ = ok;
      read_done_ = true;
      cv_.notify_all();
      return;
    }
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "the call ended before its request arrived"));
      return;
    }
    dispatch_->unanswered++;  // until RunUnary's handler returns
    if (dispatch_->inline_ok.count(method_) && request_.Length() <= dispatch_->inline_max_bytes) {
      RunUnary();
    } else {
      pool_->Submit([this] { RunUnary(); });
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    write_ok_ = ok;
    write_done_ = true;
    cv_.notify_all();
  }

  void OnCancel() override {
    py::object callback;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      cv_.notify_all();
      callback = std::move(cancel_callback_);
    }
    if (callback && !_Py_IsFinalizing()) {
      GilForNativeThread gil;
      try {
        callback();
      } catch (py::error_already_set& e) {
        e.discard_as_unraisable("mien front: cancel callback");
      }
      callback = py::object();  // drop the reference while holding the GIL
    } else if (callback) {
      callback.release();  // no interpreter left to decref with
    }
  }

  void OnDone() override { delete this; }

  // --- used by StreamHandle on a worker thread, without the GIL
  std::optional<std::string> BlockingRead() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_done_ = false;
    }
    grpc::ByteBuffer buffer;
    StartRead(&buffer);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return read_done_; });
    if (!read_ok_) return std::nullopt;
    return ToString(buffer);
  }

  bool BlockingWrite(const std::string& data) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      write_done_ = false;
    }
    grpc::ByteBuffer buffer = ToBuffer(data.data(), data.size());
    StartWrite(&buffer);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return write_done_; });
    return write_ok_;
  }

  bool Cancelled() {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_ || ctx_->IsCancelled();
  }

  // Called with the GIL held.
  void SetCancelCallback(py::object callback) {
    bool already;
    {
      std::lock_guard<std::mutex> lock(mu_);
      already = cancelled_;
      if (!already) cancel_callback_ = std::move(callback);
    }
    if (already) callback();
  }

 private:
  py::dict CallInfo() {
    py::list metadata;
    for (const auto& [key, value] : ctx_->client_metadata()) {
      std::string k(key.data(), key.size());
      py::object v;
      if (k.size() > 4 && k.compare(k.size() - 4, 4, "-bin") == 0) {
        v = py::bytes(value.data(), value.size());
      } else {
        v = py::str(value.data(), value.size());
      }
      metadata.append(py::make_tuple(k, v));
    }
    py::dict info;
    info["metadata"] = py::tuple(metadata);
    info["peer"] = ctx_->peer();
    // when the call arrived, on Python's time.monotonic() clock (both CLOCK_MONOTONIC): a call
    // that arrived before a shutdown's drain began is served, not refused, when its turn comes
    info["received"] = std::chrono::duration<double>(received_.time_since_epoch()).count();
    auto deadline = ctx_->deadline();
    if (deadline == std::chrono::system_clock::time_point::max() ||
        deadline.time_since_epoch() > std::chrono::hours(24 * 365 * 100)) {
      info["deadline"] = py::none();
    } else {
      info["deadline"] = std::chrono::duration<double>(deadline.time_since_epoch()).count();
    }
    return info;
  }

  static grpc::Status StatusFrom(int code, const std::string& details, const std::string& status_details) {
    if (code < 0 || code > 16) return grpc::Status(grpc::StatusCode::UNKNOWN, details);
    return grpc::Status(static_cast<grpc::StatusCode>(code), details, status_details);
  }

  static std::string StatusDetailsAt(const py::tuple& result, size_t index) {
    if (result.size() <= index || result[index].is_none()) return std::string();
    return result[index].cast<std::string>();
  }

  // No Python left to run handlers: the process is exiting.
  bool FinishedAsExiting() {
    if (!_Py_IsFinalizing()) return false;
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
    return true;
  }

  void RunUnary() {
    struct Answered {  // however RunUnary ends
      const Dispatch* dispatch;
      ~Answered() { dispatch->unanswered--; }
    } answered{dispatch_};
    if (FinishedAsExiting()) return;
    int code = static_cast<int>(grpc::StatusCode::INTERNAL);
    std::string details;
    std::string status_details;
    std::optional<grpc::ByteBuffer> reply;
    {
      GilForNativeThread gil;
      try {
        std::string raw = ToString(request_);
        py::tuple result = dispatch_->unary(method_, py::bytes(raw), CallInfo());
        code = result[0].cast<int>();
        details = result[1].cast<std::string>();
        status_details = StatusDetailsAt(result, 3);
        if (code == 0) {
          char* data;
          Py_ssize_t size;
          py::object body = result[2];
          if (PyBytes_AsStringAndSize(body.ptr(), &data, &size) != 0) throw py::error_already_set();
          reply = ToBuffer(data, static_cast<size_t>(size));
        }
      } catch (const std::exception& e) {  // includes py::error_already_set
        code = static_cast<int>(grpc::StatusCode::INTERNAL);
        details = std::string("mien front: ") + e.what();
      }
    }
    if (code == 0) {
      reply_ = std::move(*reply);
      StartWriteAndFinish(&reply_, grpc::WriteOptions(), grpc::Status::OK);
    } else {
      Finish(StatusFrom(code, details, status_details));
    }
  }

  void RunStream() {
    if (FinishedAsExiting()) return;
    int code = static_cast<int>(grpc::StatusCode::INTERNAL);
    std::string details;
    std::string status_details;
    {
      GilForNativeThread gil;
      auto handle = std::make_shared<StreamHandle>(this);
      try {
        py::tuple result = dispatch_->stream(method_, py::cast(handle), CallInfo());
        code = result[0].cast<int>();
        details = result[1].cast<std::string>();
        status_details = StatusDetailsAt(result, 2);
      } catch (const std::exception& e) {
        code = static_cast<int>(grpc::StatusCode::INTERNAL);
        details = std::string("mien front: ") + e.what();
      }
      handle->Detach();
      py::object dropped;
      {
        std::lock_guard<std::mutex> lock(mu_);
        dropped = std::move(cancel_callback_);
      }
    }
    Finish(StatusFrom(code, details, status_details));
  }

  const Dispatch* dispatch_;
  WorkerPool* pool_;
  grpc::GenericCallbackServerContext* ctx_;
  std::string method_;
  const bool streaming_;  // a stream runs on its own thread and reads/writes through StreamHandle
  const std::chrono::steady_clock::time_point received_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer reply_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool read_done_ = false, read_ok_ = false;
  bool write_done_ = false, write_ok_ = false;
  bool cancelled_ = false;
  py::object cancel_callback_;
};

Call* StreamHandle::Checked() {
  if (call_ == nullptr) throw std::runtime_error("this stream's call has finished");
  return call_;
}

py::object StreamHandle::Read() {
  Call* call = Checked();
  std::optional<std::string> data;
  {
    py::gil_scoped_release nogil;
    data = call->BlockingRead();
  }
  if (!data) return py::none();
  return py::bytes(*data);
}

bool StreamHandle::Write(py::bytes data) {
  Call* call = Checked();
  std::string raw = data;  // copy while holding the GIL
  py::gil_scoped_release nogil;
  return call->BlockingWrite(raw);
}

bool StreamHandle::Cancelled() {
  Call* call = Checked();
  return call->Cancelled();
}

void StreamHandle::SetCancelCallback(py::object callback) { Checked()->SetCancelCallback(std::move(callback)); }

class Service final : public grpc::CallbackGenericService {
 public:
  Service(const Dispatch* dispatch, WorkerPool* pool, StreamThreads* streams)
      : dispatch_(dispatch), pool_(pool), streams_(streams) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Call(dispatch_, pool_, streams_, ctx);
  }

 private:
  const Dispatch* dispatch_;
  WorkerPool* pool_;
  StreamThreads* streams_;
};

class Front {
 public:
  Front(const std::string& address, py::object unary, py::object stream,
        std::vector<std::string> streaming, std::vector<std::string> inline_ok, size_t inline_max_bytes,
        int max_message_bytes, int workers, int max_streams,
        std::optional<std::pair<std::string, std::string>> tls_key_cert)
      : address_(address), max_message_bytes_(max_message_bytes), workers_(workers), max_streams_(max_streams),
        tls_(std::move(tls_key_cert)) {
    dispatch_.unary = std::move(unary);
    dispatch_.stream = std::move(stream);
    dispatch_.streaming.insert(streaming.begin(), streaming.end());
    dispatch_.inline_ok.insert(inline_ok.begin(), inline_ok.end());
    dispatch_.inline_max_bytes = inline_max_bytes;
  }

  ~Front() { Stop(0.0); }

  // Bind and start serving; returns the bound port (address may ask for port 0).
  int Start() {
    if (server_) throw std::runtime_error("the front is already started");
    pool_ = std::make_unique<WorkerPool>(workers_);
    streams_ = std::make_unique<StreamThreads>(max_streams_);
    service_ = std::make_unique<Service>(&dispatch_, pool_.get(), streams_.get());
    std::shared_ptr<grpc::ServerCredentials> credentials;
    if (tls_) {
      grpc::SslServerCredentialsOptions options;
      options.pem_key_cert_pairs.push_back({tls_->first, tls_->second});
      credentials = grpc::SslServerCredentials(options);
    } else {
      credentials = grpc::InsecureServerCredentials();
    }
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address_, credentials, &port_);
    builder.RegisterCallbackGenericService(service_.get());
    builder.SetMaxReceiveMessageSize(max_message_bytes_);
    builder.SetMaxSendMessageSize(max_message_bytes_);
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    {
      py::gil_scoped_release nogil;
      server_ = builder.BuildAndStart();
    }
    if (!server_ || port_ == 0) {
      server_.reset();
      pool_->Stop();
      streams_->JoinAll();
      throw std::runtime_error("cannot bind " + address_);
    }
    return port_;
  }

  // Stop taking calls, let running ones finish for up to grace_s, cancel the rest.
  void Stop(double grace_s) {
    if (!server_) return;
    py::gil_scoped_release nogil;  // running handlers need the GIL to finish
    auto deadline = std::chrono::system_clock::now() +
                    std::chrono::microseconds(static_cast<int64_t>(grace_s * 1e6));
    server_->Shutdown(deadline);
    server_->Wait();
    pool_->Stop();
    streams_->JoinAll();
    server_.reset();
  }

  int port() const { return port_; }
  int unanswered() const { return dispatch_.unanswered.load(); }

 private:
  std::string address_;
  int max_message_bytes_;
  int workers_;
  int max_streams_;
  std::optional<std::pair<std::string, std::string>> tls_;
  Dispatch dispatch_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<StreamThreads> streams_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace

void InitFront(py::module_& m) {
  py::class_<StreamHandle, std::shared_ptr<StreamHandle>>(m, "StreamHandle")
      .def("read", &StreamHandle::Read, "Next request message (bytes), or None once the client is done.")
      .def("write", &StreamHandle::Write, "Send one reply message; False once the call is gone.")
      .def("cancelled", &StreamHandle::Cancelled)
      .def("set_cancel_callback", &StreamHandle::SetCancelCallback);
  py::class_<Front>(m, "Front")
      .def(py::init<const std::string&, py::object, py::object, std::vector<std::string>,
                    std::vector<std::string>, size_t, int, int, int,
                    std::optional<std::pair<std::string, std::string>>>(),
           py::arg("address"), py::arg("unary"), py::arg("stream"), py::arg("streaming_methods"),
           py::arg("inline_methods"), py::arg("inline_max_bytes"), py::arg("max_message_bytes"),
           py::arg("workers"), py::arg("max_streams"), py::arg("tls_key_cert") = py::none())
      .def("start", &Front::Start)
      .def("stop", &Front::Stop, py::arg("grace_s"))
      .def_property_readonly("port", &Front::port)
      .def_property_readonly("unanswered", &Front::unanswered,
                             "Unary calls received whose handler has not returned (queued or running).");
}

}  // namespace mien_native
