// A small blocking HTTP/1.1 client for the frontend tests (Boost.Beast, one connection).
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <map>
#include <string>

namespace gpuhive::server::testing {

struct ClientResponse {
  int status = 0;  // 0: the connection failed or was closed without an answer
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class HttpClient {
 public:
  explicit HttpClient(uint16_t port) : port_(port) {}

  ClientResponse Request(const std::string& method, const std::string& target,
                         const std::string& body = "",
                         const std::map<std::string, std::string>& headers = {}) {
    namespace http = boost::beast::http;
    ClientResponse out;
    boost::beast::error_code ec;
    if (!connected_) {
      stream_.emplace(ioc_);
      stream_->connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_), ec);
      if (ec) return out;
      connected_ = true;
    }
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    http::write(*stream_, req, ec);
    if (ec) {
      connected_ = false;
      return out;
    }
    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 30);
    http::read(*stream_, buf, parser, ec);
    if (ec) {
      connected_ = false;
      return out;
    }
    auto res = parser.release();
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    out.body = std::move(res.body());
    if (!res.keep_alive()) connected_ = false;
    return out;
  }

 private:
  uint16_t port_;
  boost::asio::io_context ioc_;
  std::optional<boost::beast::tcp_stream> stream_;
  bool connected_ = false;
};

}  // namespace gpuhive::server::testing
