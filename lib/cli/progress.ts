// A download progress bar on stderr: redrawn in place on a terminal, a line per quarter otherwise (logs, CI).
import type { DownloadProgress } from '../weights/download';

function megabytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

export function progressBar(stream: NodeJS.WriteStream = process.stderr): (progress: DownloadProgress) => void {
  let lastQuarter = -1;
  let lastDraw = 0;
  return ({ name, loaded, total }) => {
    const fraction = total ? Math.min(1, loaded / total) : undefined;
    const done = total !== undefined && loaded >= total;
    if (stream.isTTY) {
      const now = Date.now();
      if (!done && now - lastDraw < 100) return;
      lastDraw = now;
      const width = 30;
      const bar = fraction === undefined ? '' : `[${'#'.repeat(Math.round(fraction * width)).padEnd(width)}] ${(fraction * 100).toFixed(0).padStart(3)}% `;
      stream.write(`\r${name} ${bar}${megabytes(loaded)}${total ? ` of ${megabytes(total)}` : ''}\x1b[K${done ? '\n' : ''}`);
      return;
    }
    const quarter = fraction === undefined ? (loaded === 0 ? 0 : -1) : Math.floor(fraction * 4);
    if (quarter > lastQuarter) {
      lastQuarter = quarter;
      stream.write(`${name}: ${megabytes(loaded)}${total ? ` of ${megabytes(total)} (${quarter * 25}%)` : ''}\n`);
    }
  };
}
