// How a frame is padded before it enters a model and cropped after: the addon's one definition.
// python/flowlib/padding.py and lib/padding.ts define the same; a test checks that all three agree.
#pragma once

struct Padding {
  int top = 0, left = 0;                  // where the frame sits inside the padded frame
  int height = 0, width = 0;              // the frame's own size
  int paddedHeight = 0, paddedWidth = 0;  // multiples of the stride, at least the minimum size
};

// Replicate padding to a multiple of `stride` and at least `minSize`, centred as the RAFT authors' evaluation pads.
Padding PaddingFor(int height, int width, int stride, int minSize);
