// docs/api.md from the library's own declarations and JSDoc: every name lib/index.ts exports, in its order, with its
// signature as written and its comment. Nothing in the page is written by hand, so it cannot drift from the code.
import * as path from 'path';
import ts from 'typescript';

const ENTRY = 'lib/index.ts';

/** One declaration's text without its body, on one line. */
function signature(node: ts.Node, source: ts.SourceFile): string {
  const body = (node as { body?: ts.Node }).body;
  const end = body ? body.getStart(source) : node.getEnd();
  let text = source.text.slice(node.getStart(source), end);
  // Drop the JSDoc and decorators that getStart includes, and a trailing semicolon or initialiser.
  text = text.replace(/^\s*(export\s+)?(declare\s+)?/, '').replace(/\s+/g, ' ').replace(/[;{]\s*$/, '').trim();
  return text;
}

function docOf(node: ts.Node): string {
  const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
  return docs.map((d) => (typeof d.comment === 'string' ? d.comment : ts.getTextOfJSDocComment(d.comment) ?? '')).join('\n').trim();
}

function isPublicMember(member: ts.ClassElement | ts.TypeElement): boolean {
  const modifiers = ts.canHaveModifiers(member) ? ts.getModifiers(member) ?? [] : [];
  if (modifiers.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) return false;
  const name = member.name;
  if (name && ts.isPrivateIdentifier(name)) return false;
  return !(name && ts.isIdentifier(name) && name.text.startsWith('_'));
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n+/g, ' ');
}

function memberLines(members: readonly (ts.ClassElement | ts.TypeElement)[], source: ts.SourceFile): string[] {
  const lines: string[] = [];
  for (const member of members) {
    if (!isPublicMember(member) || ts.isIndexSignatureDeclaration(member) || ts.isClassStaticBlockDeclaration(member)) continue;
    if (ts.isConstructorDeclaration(member)) continue;
    const text = ts.isPropertyDeclaration(member) && member.initializer
      ? signature(member, source).slice(0, member.initializer.getStart(source) - member.getStart(source)).replace(/\s*=\s*$/, '').replace(/\s+/g, ' ')
      : signature(member, source);
    const doc = docOf(member);
    lines.push(`- \`${text}\`${doc ? `: ${doc.replace(/\n+/g, ' ')}` : ''}`);
  }
  return lines;
}

function section(name: string, declaration: ts.Declaration, source: ts.SourceFile): string | undefined {
  const doc = docOf(ts.isVariableDeclaration(declaration) ? declaration.parent.parent : declaration);
  const parts: string[] = [`### ${name}`, ''];
  if (ts.isClassDeclaration(declaration)) {
    const heading = signature(declaration, source).replace(/\{.*$/, '').trim();
    parts.push(`\`${heading}\``, '');
    if (doc) parts.push(doc, '');
    parts.push(...memberLines(declaration.members, source));
  } else if (ts.isInterfaceDeclaration(declaration)) {
    if (doc) parts.push(doc, '');
    const rows = declaration.members.filter((m) => isPublicMember(m) && (ts.isPropertySignature(m) || ts.isMethodSignature(m)));
    const heritage = declaration.heritageClauses?.map((h) => h.getText(source)).join(' ');
    if (heritage) parts.push(`\`interface ${name} ${heritage}\``, '');
    if (rows.length > 0) {
      parts.push('| member | type | |', '|---|---|---|');
      for (const m of rows) {
        const member = m as ts.PropertySignature | ts.MethodSignature;
        const optional = member.questionToken ? '?' : '';
        const readonly = ts.getModifiers(member)?.some((x) => x.kind === ts.SyntaxKind.ReadonlyKeyword) ? 'readonly ' : '';
        const type = ts.isPropertySignature(member)
          ? member.type?.getText(source) ?? 'unknown'
          : signature(member, source).replace(/^[^(]*/, '');
        parts.push(`| \`${readonly}${member.name.getText(source)}${optional}\` | \`${escapeCell(type.replace(/\s+/g, ' '))}\` | ${escapeCell(docOf(member))} |`);
      }
    }
  } else if (ts.isTypeAliasDeclaration(declaration)) {
    parts.push(`\`\`\`ts\n${signature(declaration, source)}\n\`\`\``, '');
    if (doc) parts.push(doc);
  } else if (ts.isFunctionDeclaration(declaration)) {
    parts.push(`\`\`\`ts\nfunction ${signature(declaration, source).replace(/^(async\s+)?function\s+/, '')}\n\`\`\``, '');
    if (doc) parts.push(doc);
  } else if (ts.isVariableDeclaration(declaration)) {
    const type = declaration.type?.getText(source);
    const value = declaration.initializer?.getText(source).replace(/\s+/g, ' ');
    const shown = type ? `const ${name}: ${type}` : `const ${name} = ${value && value.length <= 160 ? value : '...'}`;
    parts.push(`\`\`\`ts\n${shown}\n\`\`\``, '');
    if (doc) parts.push(doc);
  } else {
    return undefined;
  }
  return parts.join('\n').trimEnd();
}

/** The page, generated from the sources under `root`. */
export function apiPage(root: string): string {
  const entry = path.join(root, ENTRY);
  const program = ts.createProgram([entry], { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, skipLibCheck: true, types: [] });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  const kinds: Record<string, string[]> = { Classes: [], Functions: [], Constants: [], Types: [] };
  for (const exported of checker.getExportsOfModule(module)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const declaration = symbol.declarations?.[0];
    if (!declaration) continue;
    const source = declaration.getSourceFile();
    const text = section(exported.name, declaration, source);
    if (!text) continue;
    const where = path.relative(root, source.fileName);
    const kind = ts.isClassDeclaration(declaration) ? 'Classes' : ts.isFunctionDeclaration(declaration) ? 'Functions'
      : ts.isVariableDeclaration(declaration) ? 'Constants' : 'Types';
    kinds[kind].push(`${text}\n\n<sub>${where}</sub>`);
  }
  const out = [
    '# API',
    '',
    '<!-- Generated from the JSDoc of what lib/index.ts exports by docs/generate (npm run docs); do not edit. -->',
    '',
    "Everything `require('torch-optical-flow')` exports. Argument mistakes throw `TypeError` / `RangeError` with a",
    '`code` from `ARGUMENT_ERROR_CODES`; everything else rejects with a `FlowError` (see [robustness](robustness.md)).',
  ];
  for (const [kind, entries] of Object.entries(kinds)) {
    if (entries.length === 0) continue;
    out.push('', `## ${kind}`, '', entries.join('\n\n'));
  }
  return `${out.join('\n')}\n`;
}
