/**
 * Options declared once: each option's name, the other names it is accepted
 * under (the seeds' snake_case spellings), how a given value is checked and
 * what it becomes, and its default. The README's table and the command
 * line's help are checked against these tables, so they cannot drift.
 */
import { SessionStoreError } from '../errors.js';

/** One option: how it is spelled, checked, defaulted and described. */
export interface OptionRule<Value> {
  /** Other names accepted for it (the seeds' names, snake_case). */
  readonly aliases: readonly string[];
  /** Checks a given value (never `undefined`) and returns what the store uses; throws naming `name`. */
  readonly parse: (value: unknown, name: string) => Value;
  /** What the store uses when the option is left out. */
  readonly fallback: Value;
  /** The default as the README and `--help` show it. */
  readonly defaultText: string;
  /** One line for the README's options table. */
  readonly summary: string;
  /** The name the checked value goes under when it differs from the option's (`ttl` is used as `ttlSeconds`). */
  readonly as?: string;
}

/**
 * A table with one rule for every key of `Options`: leaving an option out of
 * the table fails to compile.
 */
export type OptionTable<Options> = { readonly [Name in keyof Required<Options>]: OptionRule<unknown> };

/** What a table resolves to: each option's checked value, under its `as` name when it has one. */
export type ResolvedTable<Table> = {
  readonly [Name in keyof Table as Table[Name] extends { readonly as: infer As extends string } ? As : Name]: Table[Name] extends OptionRule<infer Value>
    ? Value
    : never;
};

/** An `ERR_INVALID_OPTION` naming the option. */
export function invalidOption(name: string, why: string): SessionStoreError {
  return new SessionStoreError('ERR_INVALID_OPTION', `option "${name}" ${why}`);
}

/** A rule, with its aliases defaulting to none; `as` keeps its literal type, so the resolved type knows the name. */
export function rule<Value, const As extends string | undefined = undefined>(
  definition: Omit<OptionRule<Value>, 'aliases' | 'as'> & { readonly aliases?: readonly string[]; readonly as?: As },
): OptionRule<Value> & (As extends string ? { readonly as: As } : unknown) {
  return { aliases: [], ...definition } as OptionRule<Value> & (As extends string ? { readonly as: As } : unknown);
}

/** Limits of a number option. */
export interface NumberLimits {
  readonly integer?: boolean;
  /** `0` is allowed. */
  readonly zero?: boolean;
  readonly max?: number;
}

/** Checks a number against its limits; numeric strings count only where `fromText` allows them (a port in a file). */
export function parseNumber(value: unknown, name: string, { integer = false, zero = false, max = Number.POSITIVE_INFINITY }: NumberLimits = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zero && value === 0) || value > max || (integer && !Number.isInteger(value))) {
    const range = `${zero ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}${max < Number.POSITIVE_INFINITY ? ` up to ${max}` : ''}`;
    throw invalidOption(name, `must be a ${range}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A number option of seconds, used in milliseconds. */
export function seconds(limits: NumberLimits = {}): (value: unknown, name: string) => number {
  return (value, name) => parseNumber(value, name, limits) * 1000;
}

/** A non-empty string. */
export function parseString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalidOption(name, `must be a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

/** `true` or `false`. */
export function parseBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidOption(name, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** Every name a table accepts, mapped to the option it means. */
export function namesOf(table: Record<string, OptionRule<unknown>>): Map<string, string> {
  const names = new Map<string, string>();
  for (const [name, option] of Object.entries(table)) {
    names.set(name, name);
    for (const alias of option.aliases) names.set(alias, name);
  }
  return names;
}

/**
 * Renames given options to their canonical names, refusing one given twice
 * under two names with different values. Names no table knows are returned
 * apart, for the caller to refuse.
 */
export function canonicalise(
  input: Readonly<Record<string, unknown>>,
  names: ReadonlyMap<string, string>,
): { options: Record<string, unknown>; spelledAs: Map<string, string>; unknown: string[] } {
  const options: Record<string, unknown> = {};
  const spelledAs = new Map<string, string>();
  const unknown: string[] = [];
  for (const [given, value] of Object.entries(input)) {
    const name = names.get(given);
    if (name === undefined) {
      unknown.push(given);
      continue;
    }
    const earlier = spelledAs.get(name);
    if (earlier !== undefined && options[name] !== value) throw invalidOption(given, `is given twice, also as "${earlier}", with different values`);
    spelledAs.set(name, given);
    options[name] = value;
  }
  return { options, spelledAs, unknown };
}

/**
 * Resolves canonical options against a table: each given value parsed, each
 * missing one defaulted. Errors name the option as the user spelled it.
 */
export function resolveTable<Table extends Record<string, OptionRule<unknown>>>(
  table: Table,
  options: Readonly<Record<string, unknown>>,
  spelledAs: ReadonlyMap<string, string> = new Map(),
): ResolvedTable<Table> {
  const resolved: Record<string, unknown> = {};
  for (const [name, option] of Object.entries(table)) {
    const value = options[name];
    resolved[option.as ?? name] = value === undefined ? option.fallback : option.parse(value, spelledAs.get(name) ?? name);
  }
  return resolved as ResolvedTable<Table>;
}
