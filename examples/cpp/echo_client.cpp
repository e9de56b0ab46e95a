/*
 * Request bytes with protoc-generated C++ classes from the installed protos, sent with the C++ wrapper.
 *
 *   protoc -I"$(pkg-config --variable=protodir jina_net)" --cpp_out=. jina.proto docarray.proto
 *   c++ -std=c++17 -I. echo_client.cpp jina.pb.cc docarray.pb.cc $(pkg-config --cflags --libs jina_net protobuf) \
 *     -pthread -o echo_client_cpp
 *   jina-net-echo &                      # prints SERVER server0 echo 127.0.0.1:PORT, then READY
 *   ./echo_client_cpp 127.0.0.1:PORT
 */
#include <cstdio>
#include <iostream>
#include <string>

#include <jina_net.hpp>

#include "jina.pb.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " HOST:PORT   (a jina 3.1 worker or head, e.g. jina-net-echo's)\n";
    return 2;
  }
  jina::DataRequestProto request;
  request.mutable_header()->set_request_id("example-cpp-1");
  request.mutable_header()->set_exec_endpoint("/index");
  for (const char *text : {"hello", "world"}) {
    docarray::DocumentProto *doc = request.mutable_data()->mutable_docs()->add_docs();
    doc->set_id(std::string("doc-") + text);
    doc->set_text(text);
  }
  (*request.mutable_parameters()->mutable_fields())["top_k"].set_number_value(3);
  const std::string bytes = request.SerializeAsString();

  try {
    jina_net::OneShotOptions options;
    options.endpoint = "/index";
    options.timeout = std::chrono::milliseconds(10000);
    jina_net::Response response = jina_net::send_request_sync(bytes, argv[1], options);
    jina::DataRequestProto answer;
    if (!answer.ParseFromArray(response.body().data(), static_cast<int>(response.body().size()))) {
      std::cerr << "the answer is not a DataRequestProto\n";
      return 1;
    }
    std::cout << "request " << answer.header().request_id() << ": " << answer.data().docs().docs_size()
              << " documents back from " << response.address() << ", routes:";
    for (const jina::RouteProto &route : answer.routes()) std::cout << ' ' << route.executor();
    std::cout << '\n';
    for (const docarray::DocumentProto &doc : answer.data().docs().docs())
      std::cout << "  " << doc.id() << ": " << doc.text() << '\n';
    return answer.header().request_id() == "example-cpp-1" && answer.data().docs().docs_size() == 2 ? 0 : 1;
  } catch (const jina_net::Error &e) {
    std::cerr << "send failed: " << e.what() << '\n';
    return 1;
  }
}
