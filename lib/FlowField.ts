/** A dense flow field in pixels: for each pixel (x, y), `data[2 * (y * width + x)]` is u and the next value v. */
export class FlowField {
  readonly width: number;
  readonly height: number;
  /** u and v interleaved per pixel, row-major: the layout of `.flo` files and of OpenCV's CV_32FC2. */
  readonly data: Float32Array;
  /** Refinement iterations that produced it (RAFT; fewer than asked when a `tolerance` stopped early). */
  readonly iterations?: number;

  constructor(width: number, height: number, data: Float32Array, iterations?: number) {
    if (data.length !== width * height * 2) {
      throw new RangeError(`Expected ${width * height * 2} values for a ${width}x${height} flow but received ${data.length}`);
    }
    this.width = width;
    this.height = height;
    this.data = data;
    if (iterations) this.iterations = iterations;
  }

  /** The motion [u, v] of pixel (x, y). */
  at(x: number, y: number): [number, number] {
    if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x >= this.width || y >= this.height) {
      throw new RangeError(`Expected a pixel inside ${this.width}x${this.height} but received (${x}, ${y})`);
    }
    const i = 2 * (y * this.width + x);
    return [this.data[i], this.data[i + 1]];
  }

  /** The largest motion magnitude in pixels. */
  maxMagnitude(): number {
    let max = 0;
    for (let i = 0; i < this.data.length; i += 2) {
      const m = Math.hypot(this.data[i], this.data[i + 1]);
      if (m > max) max = m;
    }
    return max;
  }
}
