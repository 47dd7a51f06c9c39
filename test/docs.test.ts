import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { generatedPages } from '../docs/generate/pages';
import { ROOT } from './helpers';

// The docs' generated parts are made from the code (docs/generate); the rest is checked for links that lead nowhere.
describe('the documentation', function () {
  this.timeout(120_000);
  it('has every generated part as the code makes it (npm run docs writes them)', () => {
    for (const [file, content] of generatedPages(ROOT)) {
      const current = fs.readFileSync(path.join(ROOT, file), 'utf8');
      assert.ok(current === content, `${file} is stale: run \`npm run docs\``);
    }
  });

  it('keeps the README short, and every relative link in it and in docs/ leads to a file and heading that exist', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    assert.ok(readme.length <= 6 * 1024, `README.md is ${readme.length} bytes`);
    const pages = ['README.md', 'server/README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    const anchors = (file: string) => new Set(fs.readFileSync(file, 'utf8').split('\n').filter((l) => /^#+ /.test(l))
      .map((l) => l.replace(/^#+ /, '').toLowerCase().replace(/[^\w\s-]/g, '').trim().replace(/\s/g, '-')));
    let links = 0;
    for (const page of pages) {
      const text = fs.readFileSync(path.join(ROOT, page), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const [file, anchor] = target.split('#');
        const resolved = file ? path.resolve(ROOT, path.dirname(page), file) : path.join(ROOT, page);
        assert.ok(fs.existsSync(resolved), `${page} links to ${target}, which does not exist`);
        if (anchor) assert.ok(anchors(resolved).has(anchor), `${page} links to ${target}: no such heading`);
        links++;
      }
    }
    assert.ok(links > 10, `only ${links} links checked`);
  });
});
