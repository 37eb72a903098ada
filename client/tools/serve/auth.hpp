// Bearer tokens -> database roles (PostgREST's model: the gateway logs in as one role and acts
// as the mapped role). The tokens file has lines `TOKEN ROLE` or `sha256:HEX ROLE`; # comments.
// Tokens are kept only as SHA-256 digests (OpenSSL libcrypto).
#pragma once
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pgingest_serve {

std::string sha256_hex(std::string_view data);

class TokenTable {
  public:
    // Reads the file; false with err ("line N: ...") when it cannot be read or a line is bad.
    bool load(const std::string &path, std::string &err);
    // The role of an Authorization header value ("Bearer TOKEN"), or nothing.
    std::optional<std::string> role_for(std::string_view authorization) const;
    // Every distinct role named in the file.
    std::vector<std::string> roles() const;
    std::size_t size() const;

  private:
    mutable std::mutex mu_;
    std::unordered_map<std::string, std::string> by_digest_; // hex SHA-256 -> role
};

} // namespace pgingest_serve
