// A frame's pixels, copied off the JavaScript heap so the worker thread can read them safely.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

enum class PixelType { UInt8, Float32 };

// Channel order of the pixels as the caller gave them; the worker converts to RGB.
enum class ChannelOrder { RGB, BGR, RGBA, BGRA, Gray };

struct Frame {
  int width = 0;
  int height = 0;
  int channels = 0;
  PixelType type = PixelType::UInt8;
  ChannelOrder order = ChannelOrder::RGB;
  std::vector<uint8_t> bytes;  // row-major, interleaved channels, tightly packed
};

// A flow field in pixels, u and v interleaved per pixel (the .flo and CV_32FC2 layout).
struct FlowResult {
  int width = 0;
  int height = 0;
  std::vector<float> data;
  int iterations = 0;  // refinement iterations that ran (RAFT); 0 for models without refinement
};
