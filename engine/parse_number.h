// Strict integer parsing for text that comes from files and options
// (checkpoint metadata, pseudo-label names, --k lists). std::stoll alone
// accepts "12abc" as 12 and reports "abc" as a bare "stoll"; these take the
// whole text or nothing, and the throwing form names where the text came from.
#pragma once
#include <cstdint>
#include <string>

namespace advcl {

// The whole of `text` as a base-10 integer (optional sign, no spaces):
// false if it is anything else or out of the int64 range.
bool parse_int64(const std::string& text, int64_t* out);

// parse_int64, or an Error "<file>: metadata '<key>' is '<text>', not an
// integer (...)" for a value read from a checkpoint's metadata.
int64_t metadata_int(const std::string& file, const std::string& key, const std::string& text);

}  // namespace advcl
