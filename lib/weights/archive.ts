// Extracts named members of a downloaded zip with yauzl (which checks each entry's sizes and CRC-32 as it
// inflates), each through a temporary file that is moved into place once whole.
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import { pipeline } from 'stream/promises';
import { Transform } from 'stream';
import * as yauzl from 'yauzl';
import { FlowError } from '../FlowError';

/** The largest member the library will extract: far beyond any published weights, far below a zip bomb. */
const MAX_MEMBER_BYTES = 4 * 2 ** 30;

/**
 * Extracts `members` (zip path -> target file) from `zipFile`; returns each member's SHA-256. A member that is
 * missing, oversized or corrupt is an ERR_DOWNLOAD error and leaves no target file behind.
 */
export async function extractMembers(zipFile: string, members: Map<string, string>, name: string): Promise<Map<string, string>> {
  let zip: yauzl.ZipFile;
  try {
    zip = await new Promise<yauzl.ZipFile>((resolve, reject) => {
      yauzl.open(zipFile, { lazyEntries: true, autoClose: false, strictFileNames: true }, (error, opened) => (error ? reject(error) : resolve(opened)));
    });
  } catch (error) {
    throw new FlowError('ERR_DOWNLOAD', `${name} is not a readable zip archive: ${(error as Error).message}`);
  }
  const hashes = new Map<string, string>();
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', () => resolve());
      zip.on('entry', (entry: yauzl.Entry) => {
        const target = members.get(entry.fileName);
        if (target === undefined) { zip.readEntry(); return; }
        if (entry.uncompressedSize > MAX_MEMBER_BYTES) {
          reject(new FlowError('ERR_DOWNLOAD', `${name}: member ${entry.fileName} declares ${entry.uncompressedSize} bytes, more than the ${MAX_MEMBER_BYTES} allowed`));
          return;
        }
        zip.openReadStream(entry, (error, stream) => {
          if (error) { reject(error); return; }
          const partial = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.partial`;
          const hash = createHash('sha256');
          const hashing = new Transform({ transform(chunk: Buffer, _encoding, callback) { hash.update(chunk); callback(null, chunk); } });
          pipeline(stream, hashing, fs.createWriteStream(partial, { flags: 'wx' })).then(() => {
            fs.renameSync(partial, target);
            hashes.set(entry.fileName, hash.digest('hex'));
            zip.readEntry();
          }, (failure: unknown) => {
            fs.rmSync(partial, { force: true });
            reject(failure);
          });
        });
      });
      zip.readEntry();
    });
    const missing = [...members.keys()].filter((member) => !hashes.has(member));
    if (missing.length) throw new FlowError('ERR_DOWNLOAD', `${name} does not hold ${missing.join(', ')}`);
  } catch (error) {
    // All or nothing: members already extracted by this call go too.
    for (const member of hashes.keys()) fs.rmSync(members.get(member) as string, { force: true });
    throw error instanceof FlowError ? error
      : new FlowError('ERR_DOWNLOAD', `${name} could not be extracted: ${(error as Error).message}`);
  } finally {
    zip.close();
  }
  return hashes;
}
