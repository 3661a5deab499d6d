/**
 * SQL text and its parameters, built together: a tagged template whose
 * interpolations are parameters, unless they are SQL fragments themselves
 * (identifiers already validated and quoted, fixed keywords). No clause can
 * be moved away from its values, and no value ever enters the text.
 *
 * ```ts
 * const load = sql`SELECT data FROM ${table} WHERE id = ${slot('key')} AND expires_at > ${slot('now')}`;
 * const statement = compile(load, dialect.placeholder);   // once
 * runner.query(statement.text, statement.bind({ key, now }));
 * ```
 *
 * A `slot` is a named parameter bound at run time, so a statement fixed at
 * start-up is compiled once; any other interpolated value is a parameter
 * bound where it is written. A statement of that fixed set can also carry a
 * name drawn from its text ({@link named}), for drivers that keep statements
 * prepared on a connection.
 */
import { createHash } from 'node:crypto';

/** A named parameter, bound when the compiled statement runs. */
export class Slot {
  constructor(readonly name: string) {}
}

/**
 * A parameter that may appear several times in one statement: where
 * placeholders are numbered (`$1`) every use is the same placeholder.
 */
export class SharedParam {
  constructor(readonly value: unknown) {}
}

/** A fragment of SQL: text pieces with the parameters between them. */
export class Sql {
  /** `strings.length === params.length + 1`. */
  constructor(
    readonly strings: readonly string[],
    readonly params: readonly unknown[],
  ) {}
}

/** Builds a fragment: interpolated `Sql` is inlined, anything else becomes a parameter. */
export function sql(strings: TemplateStringsArray, ...parts: unknown[]): Sql {
  const texts: string[] = [strings[0] as string];
  const params: unknown[] = [];
  parts.forEach((part, index) => {
    const following = strings[index + 1] as string;
    if (part instanceof Sql) {
      texts[texts.length - 1] += part.strings[0] as string;
      for (let inner = 0; inner < part.params.length; inner++) {
        params.push(part.params[inner]);
        texts.push(part.strings[inner + 1] as string);
      }
      texts[texts.length - 1] += following;
    } else {
      params.push(part);
      texts.push(following);
    }
  });
  return new Sql(texts, params);
}

/** Trusted text: quoted identifiers, keywords. Never a value from a request. */
export function raw(text: string): Sql {
  return new Sql([text], []);
}

/** No SQL at all, for an optional clause. */
export const EMPTY = raw('');

/** A parameter that may be used several times. */
export function shared(value: unknown): SharedParam {
  return new SharedParam(value);
}

/** Double-quotes an identifier that has already been validated (standard SQL: PostgreSQL, SQLite). */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A named parameter. */
export function slot(name: string): Slot {
  return new Slot(name);
}

/** Fragments joined by a separator. */
export function join(fragments: readonly Sql[], separator = ', '): Sql {
  if (fragments.length === 0) return EMPTY;
  let joined = fragments[0] as Sql;
  for (const fragment of fragments.slice(1)) joined = sql`${joined}${raw(separator)}${fragment}`;
  return joined;
}

/** Statement text with its parameters in placeholder order, slots still to bind. */
export interface CompiledSql {
  readonly text: string;
  /** The parameters in order, named slots filled from `values`. */
  bind(values?: Readonly<Record<string, unknown>>): unknown[];
}

/** How a database writes parameters. */
export interface Placeholders {
  /** The n-th (1-based) parameter: `$1` or `?`. */
  placeholder(index: number): string;
  /** Placeholders carry their number (`$1`), so a parameter can be used twice. */
  readonly numbered: boolean;
}

/** Writes the placeholders (`$1` or `?`) and fixes the parameter order. */
export function compile(fragment: Sql, { placeholder, numbered }: Placeholders): CompiledSql {
  let text = fragment.strings[0] as string;
  const params: unknown[] = [];
  const numbers = new Map<SharedParam, number>();
  for (let index = 0; index < fragment.params.length; index++) {
    let param = fragment.params[index];
    let number = params.length + 1;
    if (param instanceof SharedParam) {
      const earlier = numbered ? numbers.get(param) : undefined;
      if (earlier !== undefined) number = earlier;
      else numbers.set(param, number);
      param = param.value;
    }
    if (number === params.length + 1) params.push(param);
    text += placeholder(number) + (fragment.strings[index + 1] as string);
  }
  const hasSlots = params.some((param) => param instanceof Slot);
  return {
    text,
    bind: (values = {}) => {
      if (!hasSlots) return params.slice();
      return params.map((param) => {
        if (!(param instanceof Slot)) return param;
        if (!Object.hasOwn(values, param.name)) throw new Error(`statement parameter "${param.name}" was not bound`);
        return values[param.name];
      });
    },
  };
}

/** A compiled statement of a table's fixed set, with the name a driver may prepare it under. */
export interface NamedSql extends CompiledSql {
  /** {@link statementName} of its text. */
  readonly name: string;
}

/** What every statement name starts with: the store's, among the application's own prepared statements. */
export const STATEMENT_NAME_PREFIX = 'sss_';

/**
 * The name a statement is prepared under on the server: `sss_` and 22
 * characters of the SHA-1 of its text (base64url, 132 bits). The name comes
 * from the text alone, never from a counter: behind a pooler that hands
 * server connections from client to client (PgBouncer), a statement some
 * other process prepared under this name on the connection we are handed is
 * this very text, and any other text (another table, another shape of one)
 * has another name. 26 characters: well under PostgreSQL's 63.
 */
export function statementName(text: string): string {
  return STATEMENT_NAME_PREFIX + createHash('sha1').update(text).digest('base64url').slice(0, 22);
}

/**
 * The compiled statement with its name, hashed here, once: call it where a
 * statement of the fixed set is compiled (at start-up, or the first time a
 * variant is needed), never per call, and never for a statement built with
 * its values in the text of each call (those have no bounded set of texts
 * and stay unnamed).
 */
export function named(statement: CompiledSql): NamedSql {
  return { text: statement.text, bind: statement.bind, name: statementName(statement.text) };
}
