import { native, NativeCapabilities } from './binding';

/** What this build of the addon can do: LibTorch's version and whether CUDA is usable. */
export function capabilities(): NativeCapabilities {
  return { ...native().capabilities() };
}
