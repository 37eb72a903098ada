// A stand-in for a PostgreSQL server, just enough of the v3 wire protocol for libpq to connect
// over a Unix socket (no authentication) and run simple queries, which it records. Each query is
// answered by a handler: success (CommandComplete) or an error with the SQLSTATE it returns. For
// testing what the libpq transport sends, without a server.
#pragma once
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace pgingest::testing {

class FakePgServer {
  public:
    // Answers a query: "" for success, else the SQLSTATE of an error.
    using Handler = std::function<std::string(const std::string &query)>;

    explicit FakePgServer(Handler handler = {}) : handler_(std::move(handler)) {
        char tmpl[] = "/tmp/pgingest-fakepg-XXXXXX";
        if (!mkdtemp(tmpl))
            throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        path_ = dir_ + "/.s.PGSQL.5432";
        listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
        if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
            ::listen(listen_fd_, 4) != 0)
            throw std::runtime_error(std::string("fake server socket: ") + std::strerror(errno));
        thread_ = std::thread([this] { serve(); });
    }
    ~FakePgServer() {
        stop_ = true;
        thread_.join();
        ::close(listen_fd_);
        ::unlink(path_.c_str());
        ::rmdir(dir_.c_str());
    }
    FakePgServer(const FakePgServer &) = delete;
    FakePgServer &operator=(const FakePgServer &) = delete;

    std::string conninfo() const {
        return "host=" + dir_ + " port=5432 user=fake dbname=fake connect_timeout=5";
    }

    std::vector<std::string> queries() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return queries_;
    }
    // Waits up to `timeout` for at least n queries.
    bool wait_for_queries(std::size_t n, std::chrono::milliseconds timeout) const {
        auto until = std::chrono::steady_clock::now() + timeout;
        while (queries().size() < n) {
            if (std::chrono::steady_clock::now() > until)
                return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return true;
    }

  private:
    void serve() {
        while (!stop_) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0)
                continue;
            int fd = ::accept(listen_fd_, nullptr, nullptr);
            if (fd < 0)
                continue;
            session(fd);
            ::close(fd);
        }
    }

    // Reads exactly n bytes; false at EOF, error, or when the server stops.
    bool read_exact(int fd, void *buf, std::size_t n) {
        auto *p = static_cast<char *>(buf);
        while (n > 0) {
            pollfd pf{fd, POLLIN, 0};
            int ready = ::poll(&pf, 1, 20);
            if (ready == 0) {
                if (stop_)
                    return false;
                continue;
            }
            ssize_t got = ready > 0 ? ::read(fd, p, n) : -1;
            if (got <= 0)
                return false;
            p += got;
            n -= static_cast<std::size_t>(got);
        }
        return true;
    }
    static std::uint32_t be32(const unsigned char *b) {
        return std::uint32_t(b[0]) << 24 | std::uint32_t(b[1]) << 16 | std::uint32_t(b[2]) << 8 | b[3];
    }
    static void send_message(int fd, char type, const std::string &body) {
        std::string m(1, type);
        std::uint32_t len = static_cast<std::uint32_t>(body.size() + 4);
        for (int shift = 24; shift >= 0; shift -= 8)
            m += static_cast<char>((len >> shift) & 0xff);
        m += body;
        for (std::size_t off = 0; off < m.size();) {
            ssize_t n = ::write(fd, m.data() + off, m.size() - off);
            if (n <= 0)
                return;
            off += static_cast<std::size_t>(n);
        }
    }
    static std::string cstr(const std::string &s) { return s + '\0'; }

    void session(int fd) {
        // Startup (SSL and GSS encryption requests are refused; libpq does not send them over
        // Unix sockets anyway).
        for (;;) {
            unsigned char head[8];
            if (!read_exact(fd, head, sizeof head))
                return;
            std::uint32_t len = be32(head), code = be32(head + 4);
            if (len < 8 || len > 10000)
                return;
            std::string rest(len - 8, '\0');
            if (!rest.empty() && !read_exact(fd, rest.data(), rest.size()))
                return;
            if (code == 80877103 || code == 80877104) { // SSLRequest, GSSENCRequest
                if (::write(fd, "N", 1) != 1)
                    return;
                continue;
            }
            break;
        }
        send_message(fd, 'R', std::string("\0\0\0\0", 4)); // AuthenticationOk
        send_message(fd, 'S', cstr("server_version") + cstr("15.0"));
        send_message(fd, 'S', cstr("client_encoding") + cstr("UTF8"));
        send_message(fd, 'S', cstr("standard_conforming_strings") + cstr("on"));
        send_message(fd, 'K', std::string("\0\0\0\1\0\0\0\2", 8)); // BackendKeyData
        send_message(fd, 'Z', "I");
        for (;;) {
            unsigned char head[5];
            if (!read_exact(fd, head, sizeof head))
                return;
            std::uint32_t len = be32(head + 1);
            if (len < 4 || len > (1u << 20))
                return;
            std::string body(len - 4, '\0');
            if (!body.empty() && !read_exact(fd, body.data(), body.size()))
                return;
            if (head[0] == 'X')
                return;
            if (head[0] != 'Q') // only simple queries are expected
                return;
            std::string query = body.substr(0, body.find('\0'));
            {
                std::lock_guard<std::mutex> lock(mutex_);
                queries_.push_back(query);
            }
            std::string sqlstate = handler_ ? handler_(query) : std::string();
            if (sqlstate.empty())
                send_message(fd, 'C', cstr(query.substr(0, query.find(' '))));
            else
                send_message(fd, 'E',
                             "S" + cstr("ERROR") + "V" + cstr("ERROR") + "C" + cstr(sqlstate) + "M" +
                                 cstr("fake server refuses: " + query) + '\0');
            send_message(fd, 'Z', "I");
        }
    }

    Handler handler_;
    std::string dir_, path_;
    int listen_fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    mutable std::mutex mutex_;
    std::vector<std::string> queries_;
};

} // namespace pgingest::testing
