#include "http_server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>

#include <chrono>
#include <cstdio>
#include <optional>

namespace pgingest_serve {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr std::chrono::seconds kReadTimeout{60};

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket &&s, std::size_t max_body, RequestHandler &h)
        : stream_(std::move(s)), max_body_(max_body), handler_(h) {}

    void run() {
        net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
    }

  private:
    void read() {
        parser_.emplace();
        parser_->body_limit(max_body_);
        stream_.expires_after(kReadTimeout);
        http::async_read(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == net::error::operation_aborted || ec == net::error::connection_reset ||
            ec == net::error::eof)
            return close();
        if (ec == http::error::body_limit)
            return write(
                handler_.protocol_error(
                    413, "body larger than --max-body (" + std::to_string(max_body_) + " bytes)", 11),
                true);
        if (ec)
            return write(handler_.protocol_error(400, "bad HTTP request: " + ec.message(), 11), true);
        stream_.expires_never();
        Request req = parser_->release();
        auto self = shared_from_this();
        auto ex = stream_.get_executor();
        handler_.handle(std::move(req), [self, ex](Response res) {
            net::post(ex, [self, res = std::move(res)]() mutable { self->write(std::move(res), false); });
        });
    }

    void write(Response res, bool close_after) {
        close_after = close_after || res.need_eof();
        if (close_after)
            res.keep_alive(false);
        res.prepare_payload();
        auto sp = std::make_shared<Response>(std::move(res));
        stream_.expires_after(kReadTimeout);
        http::async_write(stream_, *sp,
                          [self = shared_from_this(), sp, close_after](beast::error_code ec, std::size_t) {
                              if (ec || close_after)
                                  return self->close();
                              self->read();
                          });
    }

    // Lingering close: stop sending, then read (and drop) what the client still sends for up to
    // a second, so it sees our response rather than a reset.
    void close() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream_.expires_after(std::chrono::seconds(1));
        drain();
    }
    void drain() {
        stream_.async_read_some(net::buffer(discard_),
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    if (ec) {
                                        beast::error_code ignored;
                                        self->stream_.socket().close(ignored);
                                        return;
                                    }
                                    self->drain();
                                });
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::size_t max_body_;
    RequestHandler &handler_;
    char discard_[4096];
};

} // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
    Impl(net::io_context &c, const tcp::endpoint &at, std::size_t mb, RequestHandler &h)
        : ioc(c), acceptor(net::make_strand(c)), max_body(mb), handler(h) {
        acceptor.open(at.protocol());
        acceptor.set_option(net::socket_base::reuse_address(true));
        acceptor.bind(at);
        acceptor.listen(net::socket_base::max_listen_connections);
    }
    void accept() {
        acceptor.async_accept(
            net::make_strand(ioc), [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
                if (ec == net::error::operation_aborted || !self->acceptor.is_open())
                    return;
                if (!ec)
                    std::make_shared<Session>(std::move(s), self->max_body, self->handler)->run();
                else if (ec == net::error::no_descriptors) // out of file descriptors: let some close
                    std::fprintf(stderr, "pgingest serve: accept: %s\n", ec.message().c_str());
                self->accept();
            });
    }
    net::io_context &ioc;
    tcp::acceptor acceptor;
    std::size_t max_body;
    RequestHandler &handler;
};

HttpServer::HttpServer(net::io_context &ioc, const tcp::endpoint &at, std::size_t max_body,
                       RequestHandler &handler)
    : impl_(std::make_shared<Impl>(ioc, at, max_body, handler)) {}

HttpServer::~HttpServer() = default;

void HttpServer::start() {
    net::dispatch(impl_->acceptor.get_executor(), [impl = impl_] { impl->accept(); });
}

void HttpServer::stop_accepting() {
    net::dispatch(impl_->acceptor.get_executor(), [impl = impl_] {
        beast::error_code ec;
        impl->acceptor.close(ec);
    });
}

tcp::endpoint HttpServer::local_endpoint() const {
    return impl_->acceptor.local_endpoint();
}

} // namespace pgingest_serve
