// What the LibTorch loaded at run time is: its version, file and build (which may differ from the headers the addon
// was compiled with, when two installations are mixed).
#pragma once

#include <string>

class LibTorch {
 public:
  // The version of the loaded libtorch_cpu (from its build settings), for example "2.13.0".
  static std::string RuntimeVersion();
  // The version of the headers the addon was compiled against.
  static std::string HeadersVersion();
  // The file libtorch_cpu was loaded from.
  static std::string LibraryPath();
  // Whether the loaded LibTorch was built with CUDA (whether or not a device is present).
  static bool BuiltWithCuda();
};
