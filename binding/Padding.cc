#include "Padding.h"

#include <algorithm>

namespace {

int RoundUp(int value, int multiple) { return (value + multiple - 1) / multiple * multiple; }

}  // namespace

Padding PaddingFor(int height, int width, int stride, int minSize) {
  Padding p;
  p.height = height;
  p.width = width;
  p.paddedHeight = std::max(RoundUp(height, stride), RoundUp(minSize, stride));
  p.paddedWidth = std::max(RoundUp(width, stride), RoundUp(minSize, stride));
  p.top = (p.paddedHeight - height) / 2;
  p.left = (p.paddedWidth - width) / 2;
  return p;
}
