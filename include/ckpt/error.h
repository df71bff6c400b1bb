// The one exception type the library throws for input a user can get wrong (a malformed file, a
// bad option, an invalid graph). Broken internal invariants are not reported this way: they abort.
// Not meeting a memory budget is not an error either: planners report it in their result.
#pragma once

#include <stdexcept>
#include <string>

namespace ckpt {

// What went wrong, so callers (and ckpt-plan's exit codes) can tell input problems apart.
enum class ErrorKind {
  kIo,          // a file cannot be read or written
  kParse,       // not valid JSON, or not a format ckpt reads
  kValidation,  // a well-formed file or API graph that breaks a rule of the IR
  kUsage,       // a bad option value (budget syntax, strategy name)
};

// what() is the whole message: the source (file or "<api>"), the entry, the field and the fix.
class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  // The category of the error.
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace ckpt
