// SHA-256 (FIPS 180-4) of a file, so the runner refuses artifacts that do not match the
// manifest, as the Python Session does. Streaming: memory stays flat in the file size.
#pragma once
#include <string>

namespace atom {

// Lower-case hex digest of the file's bytes; throws std::runtime_error if it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace atom
