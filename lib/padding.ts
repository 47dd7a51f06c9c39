// How a frame is padded before it enters a model and cropped after: the library's one definition.
// binding/Padding.cc and python/flowlib/padding.py define the same; a test checks that all three agree.

export interface Padding {
  /** Where the frame sits inside the padded frame. */
  top: number;
  left: number;
  /** Multiples of the model's stride, and at least its minimum size. */
  paddedHeight: number;
  paddedWidth: number;
}

const roundUp = (value: number, multiple: number) => Math.ceil(value / multiple) * multiple;

/** Replicate padding to a multiple of `stride` and at least `minSize`, centred as the RAFT authors' evaluation pads. */
export function paddingFor(height: number, width: number, stride: number, minSize: number): Padding {
  const paddedHeight = Math.max(roundUp(height, stride), roundUp(minSize, stride));
  const paddedWidth = Math.max(roundUp(width, stride), roundUp(minSize, stride));
  return {
    top: Math.floor((paddedHeight - height) / 2),
    left: Math.floor((paddedWidth - width) / 2),
    paddedHeight,
    paddedWidth,
  };
}
