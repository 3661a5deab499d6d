/**
 * What the shipped type declarations show users: every type an entry point's
 * API names is one a user can name too (exported from some entry point), and
 * the store's internals stay out (the state a save is handed back is opaque).
 * Read with the TypeScript compiler from the built `dist/esm` declarations.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';
import type { LoadedState } from '../src/index.js';

// A plain object is not a state the store made (checked by `npm run typecheck`): `save` takes only those.
// @ts-expect-error the brand is missing
const notAState: LoadedState = { expiresAt: 0 };
void notAState;

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist', 'esm');
/** Symbols that name a type. */
const TYPE_SYMBOL = ts.SymbolFlags.Interface | ts.SymbolFlags.Class | ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Enum;

/** The declaration file of each entry point in package.json's `exports`. */
function entryDeclarations(): string[] {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, { import?: { types?: string } } | string> };
  const files: string[] = [];
  for (const target of Object.values(manifest.exports)) {
    const types = typeof target === 'object' ? target.import?.types : undefined;
    if (types !== undefined) files.push(join(root, types));
  }
  return files;
}

/** Every type the API of the entry points names, walked from their exports, with the symbols those exports give. */
function publicTypes(): { program: ts.Program; checker: ts.TypeChecker; exported: Set<ts.Symbol>; named: Map<ts.Symbol, string> } {
  const program = ts.createProgram(entryDeclarations(), {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const resolve = (symbol: ts.Symbol): ts.Symbol => (symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);
  const exported = new Set<ts.Symbol>();
  const roots: ts.Symbol[] = [];
  for (const file of entryDeclarations()) {
    const source = program.getSourceFile(file);
    assert.ok(source, `${file} is built`);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    assert.ok(moduleSymbol, file);
    for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
      const target = resolve(symbol);
      exported.add(target);
      roots.push(target);
    }
  }
  /** Our own declarations: the built package's, not Node's, a framework's or a driver's. */
  const ours = (symbol: ts.Symbol | undefined): boolean =>
    // (every declaration: an interface of a framework we add members to stays the framework's)
    symbol?.declarations?.every(
      (declaration) => declaration.getSourceFile().fileName.startsWith(dist + sep) || declaration.getSourceFile().fileName.startsWith(`${dist}/`),
    ) === true;
  const named = new Map<ts.Symbol, string>();
  const seenTypes = new Set<ts.Type>();
  const pending: ts.Type[] = [];
  const visit = (type: ts.Type): void => {
    if (!seenTypes.has(type)) {
      seenTypes.add(type);
      pending.push(type);
    }
  };
  const visitSignature = (signature: ts.Signature): void => {
    for (const parameter of signature.getParameters()) visit(checker.getTypeOfSymbol(parameter));
    visit(signature.getReturnType());
  };
  const walk = (type: ts.Type): void => {
    for (const symbol of [type.aliasSymbol, type.getSymbol()]) {
      if (symbol !== undefined && ours(symbol) && symbol.flags & TYPE_SYMBOL) {
        named.set(symbol, symbol.getName());
      }
    }
    for (const argument of type.aliasTypeArguments ?? []) visit(argument);
    if (type.isUnionOrIntersection()) for (const part of type.types) visit(part);
    if (!(type.flags & ts.TypeFlags.Object)) return;
    const object = type as ts.ObjectType;
    if (object.objectFlags & ts.ObjectFlags.Reference) for (const argument of checker.getTypeArguments(object as ts.TypeReference)) visit(argument);
    // Only our own types and anonymous ones are looked into: Node's, a framework's or a driver's are theirs.
    const symbol = type.getSymbol();
    if (symbol !== undefined && !ours(symbol) && !(symbol.flags & (ts.SymbolFlags.TypeLiteral | ts.SymbolFlags.ObjectLiteral))) return;
    for (const property of type.getProperties()) {
      // Members only the class itself sees are not API.
      const modifiers = property.valueDeclaration === undefined ? 0 : ts.getCombinedModifierFlags(property.valueDeclaration);
      if (modifiers & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
      visit(checker.getTypeOfSymbol(property));
    }
    for (const signature of [...type.getCallSignatures(), ...type.getConstructSignatures()]) visitSignature(signature);
    for (const info of checker.getIndexInfosOfType(type)) visit(info.type);
    if (type.isClassOrInterface()) for (const base of checker.getBaseTypes(type)) visit(base);
  };
  for (const symbol of roots) {
    if (symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.Class | ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Enum))
      visit(checker.getDeclaredTypeOfSymbol(symbol));
    if (symbol.flags & ts.SymbolFlags.Value) visit(checker.getTypeOfSymbol(symbol));
  }
  for (let type = pending.pop(); type !== undefined; type = pending.pop()) walk(type);
  return { program, checker, exported, named };
}

describe('the shipped type declarations', () => {
  const { checker, exported, named, program } = publicTypes();

  test('every type the API names is exported from an entry point (no internal type reachable, nameless to users)', () => {
    const unnamed = [...named]
      .filter(([symbol]) => !exported.has(symbol))
      .map(([symbol, name]) => `${name} (${symbol.declarations?.[0]?.getSourceFile().fileName.slice(dist.length + 1)})`);
    assert.deepStrictEqual(unnamed, []);
    // The walk found the API at all: the store, its handle and its state are among what it met.
    for (const name of ['SessionStore', 'SessionHandle', 'LoadedState']) assert.ok([...named.values()].includes(name), name);
  });

  test('LoadedState is opaque: its expiry, and a brand no other value has', () => {
    const index = program.getSourceFile(join(dist, 'index.d.ts'));
    assert.ok(index);
    const moduleSymbol = checker.getSymbolAtLocation(index);
    assert.ok(moduleSymbol);
    const state = checker.getExportsOfModule(moduleSymbol).find((symbol) => symbol.getName() === 'LoadedState');
    assert.ok(state);
    const type = checker.getDeclaredTypeOfSymbol(checker.getAliasedSymbol(state));
    const names = type.getProperties().map((property) => property.getName());
    assert.deepStrictEqual(
      names.filter((name) => !name.startsWith('__@')),
      ['expiresAt'],
    );
    assert.equal(names.length, 2, 'the expiry and the brand');
  });
});
