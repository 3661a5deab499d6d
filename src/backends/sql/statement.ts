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
 * bound where it is written.
 */

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
