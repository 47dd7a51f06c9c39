// An error that carries one of the library's error codes across the worker thread. The codes are an enum, so that
// no misspelt code can reach JavaScript; their names are FlowError.ts's codes, which a test holds them against
// (the addon's errorCodes()).
#pragma once

#include <array>
#include <stdexcept>
#include <string>

enum class ErrorCode { ModelLoad, Weights, Device, InputSize, Inference, Disposed, QueueFull, Aborted };

// Every code with its name, in enum order.
inline constexpr std::array<const char*, 8> kErrorCodeNames = {
    "ERR_MODEL_LOAD", "ERR_WEIGHTS",  "ERR_DEVICE",     "ERR_INPUT_SIZE",
    "ERR_INFERENCE",  "ERR_DISPOSED", "ERR_QUEUE_FULL", "ERR_ABORTED",
};

class FlowError : public std::runtime_error {
 public:
  FlowError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};
