#include "auth.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

namespace pgingest_serve {

std::string sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    static const char *hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

namespace {
bool is_sha256_hex(const std::string &s) {
    return s.size() == 64 &&
           std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit((unsigned char)c); });
}
} // namespace

bool TokenTable::load(const std::string &path, std::string &err) {
    std::ifstream in(path);
    if (!in) {
        err = "cannot read " + path;
        return false;
    }
    std::unordered_map<std::string, std::string> table;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        std::istringstream words(line);
        std::string token, role, extra;
        if (!(words >> token) || token[0] == '#')
            continue;
        if (!(words >> role) || (words >> extra && extra[0] != '#')) {
            err = path + ": line " + std::to_string(n) + ": expected `TOKEN ROLE` or `sha256:HEX ROLE`";
            return false;
        }
        std::string digest;
        if (token.rfind("sha256:", 0) == 0) {
            digest = token.substr(7);
            std::transform(digest.begin(), digest.end(), digest.begin(),
                           [](char c) { return std::tolower(c); });
            if (!is_sha256_hex(digest)) {
                err = path + ": line " + std::to_string(n) + ": sha256: needs 64 hex digits";
                return false;
            }
        } else {
            digest = sha256_hex(token);
        }
        table[digest] = role;
    }
    std::lock_guard<std::mutex> g(mu_);
    by_digest_.swap(table);
    return true;
}

std::optional<std::string> TokenTable::role_for(std::string_view authorization) const {
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.size() <= kBearer.size() || authorization.substr(0, kBearer.size()) != kBearer)
        return std::nullopt;
    std::string digest = sha256_hex(authorization.substr(kBearer.size()));
    std::lock_guard<std::mutex> g(mu_);
    auto it = by_digest_.find(digest);
    if (it == by_digest_.end())
        return std::nullopt;
    return it->second;
}

std::vector<std::string> TokenTable::roles() const {
    std::lock_guard<std::mutex> g(mu_);
    std::set<std::string> s;
    for (const auto &kv : by_digest_)
        s.insert(kv.second);
    return {s.begin(), s.end()};
}

std::size_t TokenTable::size() const {
    std::lock_guard<std::mutex> g(mu_);
    return by_digest_.size();
}

} // namespace pgingest_serve
