// steper/error.h — the two kinds of failure every part reports.
//
// InputError is the caller's mistake: a bad argument, a malformed input file,
// a missing index. Its message names the file and line or the field, and a
// hint at the fix where one exists. RuntimeError is the environment failing:
// a full disk, an unreachable server, a corrupt index. The CLI prints either
// as one line; it exits 2 for InputError and 1 for RuntimeError.
//
// Header-only and dependency-free, so every part may include it.
#pragma once

#include <stdexcept>
#include <string>

namespace steper {

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A record that parsed as JSON but has a missing or mistyped field. `field`
// is a path such as "contexts[3].title"; readers prefix the file and line.
class FieldError : public InputError {
 public:
  FieldError(std::string field, const std::string& problem)
      : InputError("field '" + field + "': " + problem), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

}  // namespace steper
