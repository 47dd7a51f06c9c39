// An error that carries one of the library's error codes across the worker thread.
#pragma once

#include <stdexcept>
#include <string>

class FlowError : public std::runtime_error {
 public:
  FlowError(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};
