/**
 * The layer rules of docs/architecture.md, checked over the import graph of
 * `src/` (type imports and re-exports included): no circle, the core
 * depends on nothing outside itself, backends and adapters never on each
 * other, adapters never on one another but through `adapters/shared/`, and
 * the backend registry only through the composition root.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';

const root = join(import.meta.dirname, '..', 'src');

/** Every TypeScript file under `folder`, as paths relative to src/. */
function sourceFiles(folder = root): string[] {
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [relative(root, path)] : [];
  });
}

/** The src/ files `file` imports, re-exports or loads, by relative specifiers (`import type` included). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const specifiers = [
    ...text.matchAll(
      /(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g,
    ),
  ].map((match) => (match[1] ?? match[2] ?? match[3]) as string);
  return specifiers
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => relative(root, resolve(root, dirname(file), specifier.replace(/\.js$/, '.ts'))));
}

const files = sourceFiles();
const graph = new Map(files.map((file) => [file, importsOf(file)]));

/** The import circles of the graph, each as the files around it (one per strongly connected set). */
function circles(): string[][] {
  // Tarjan's strongly connected components.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (file: string): void => {
    index.set(file, next);
    low.set(file, next++);
    stack.push(file);
    onStack.add(file);
    for (const target of graph.get(file) ?? []) {
      if (!graph.has(target)) continue;
      if (!index.has(target)) {
        visit(target);
        low.set(file, Math.min(low.get(file) as number, low.get(target) as number));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file) as number, index.get(target) as number));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop() as string;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || (graph.get(file) ?? []).includes(file)) found.push(component.sort());
  };
  for (const file of files) if (!index.has(file)) visit(file);
  return found;
}

/** The imports of the files under `from` (a folder or a file of src/) that break `allowed`. */
function violations(from: (file: string) => boolean, allowed: (file: string, target: string) => boolean): string[] {
  return files.filter(from).flatMap((file) => (graph.get(file) ?? []).filter((target) => !allowed(file, target)).map((target) => `${file} -> ${target}`));
}

const under = (folder: string) => (file: string) => file.startsWith(`${folder}/`);
const adapterFile = (file: string) => under('adapters')(file) && !under('adapters/shared')(file);
/** The composition root: what makes a store of options and a backend. */
const COMPOSITION_ROOT = ['store.ts', 'options.ts', 'config.ts', 'options-doc.ts', 'cli.ts', 'index.ts'];

describe('the layers of docs/architecture.md, over the import graph of src/', () => {
  test('every import of src/ names a file that exists', () => {
    const missing = [...graph].flatMap(([file, targets]) => targets.filter((target) => !graph.has(target)).map((target) => `${file} -> ${target}`));
    assert.deepStrictEqual(missing, []);
  });

  test('no import circle, type imports included', () => {
    assert.deepStrictEqual(circles(), []);
  });

  test('the core imports nothing outside itself but the error type', () => {
    assert.deepStrictEqual(
      violations(under('core'), (_, target) => under('core')(target) || target === 'errors.ts'),
      [],
    );
  });

  test('backends import the core, the error type and backends, never an adapter nor the composition root', () => {
    assert.deepStrictEqual(
      violations(under('backends'), (_, target) => under('core')(target) || under('backends')(target) || target === 'errors.ts'),
      [],
    );
  });

  test('the backend registry is imported by the composition root alone', () => {
    assert.deepStrictEqual(
      violations(
        (file) => !COMPOSITION_ROOT.includes(file),
        (_, target) => target !== 'backends/registry.ts',
      ),
      [],
    );
  });

  test('an adapter imports adapters/shared/, the core and the composition root, never another adapter nor a backend', () => {
    const allowed = (file: string, target: string) =>
      under('adapters/shared')(target) ||
      under('core')(target) ||
      COMPOSITION_ROOT.includes(target) ||
      target === 'errors.ts' ||
      (under('adapters/shared')(file) && !adapterFile(target));
    assert.deepStrictEqual(violations(under('adapters'), allowed), []);
  });

  test('migrate/ (the stores sessions are switched from) imports the core, the error type and the driver loader, never a backend, an adapter nor the composition root', () => {
    assert.deepStrictEqual(
      violations(
        under('migrate'),
        (_, target) => under('migrate')(target) || under('core')(target) || target === 'errors.ts' || target === 'backends/driver.ts',
      ),
      [],
    );
  });

  test('the check sees the imports it checks (a file known to import the core is read as such)', () => {
    assert.ok(files.length > 40, `${files.length} files under src/`);
    assert.ok((graph.get('store.ts') ?? []).some(under('core')), `store.ts imports ${graph.get('store.ts')?.join(', ')}`);
  });
});
