// npm run docs: writes the generated parts of docs/ (see pages.ts); with --check, only says which are stale.
import * as fs from 'fs';
import * as path from 'path';
import { generatedPages } from './pages';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const check = process.argv.includes('--check');
const stale: string[] = [];
for (const [file, content] of generatedPages(ROOT)) {
  const target = path.join(ROOT, file);
  const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : undefined;
  if (current === content) continue;
  stale.push(file);
  if (!check) fs.writeFileSync(target, content);
}
if (check && stale.length > 0) {
  console.error(`stale: ${stale.join(', ')}; run \`npm run docs\``);
  process.exitCode = 1;
} else {
  console.log(stale.length ? `wrote ${stale.join(', ')}` : 'docs are up to date');
}
