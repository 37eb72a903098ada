// The HTTP/1.1 transport: Boost.Beast sessions over Asio (keep-alive, body limit, timeouts).
// A complete request goes to the RequestHandler with a Respond callback that any thread may call
// once; the session writes the response on its own strand and reads the next request.
#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

namespace pgingest_serve {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using Respond = std::function<void(Response)>;

class RequestHandler {
  public:
    virtual ~RequestHandler() = default;
    virtual void handle(Request &&req, Respond respond) = 0;
    // A request that could not be read whole (413 over the body limit, 400 unparseable).
    virtual Response protocol_error(int code, const std::string &message, unsigned version) = 0;
};

class HttpServer {
  public:
    HttpServer(boost::asio::io_context &ioc, const boost::asio::ip::tcp::endpoint &at, std::size_t max_body,
               RequestHandler &handler);
    ~HttpServer();
    void start();
    // Closes the listening socket: no new connections; open ones finish their current request.
    void stop_accepting();
    boost::asio::ip::tcp::endpoint local_endpoint() const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

} // namespace pgingest_serve
