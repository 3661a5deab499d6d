/**
 * The options as documentation, drawn from the tables that declare them: the
 * options table of docs/options.md (checked by a test, rewritten by
 * `npm run docs:options`) and the command line's help.
 */
import type { OptionRule } from './core/option-table.js';
import { OPTION_TABLES } from './options.js';

/** Every option, in the documented order, with its rule. */
export function documentedOptions(): [name: string, rule: OptionRule<unknown>][] {
  return OPTION_TABLES.flatMap((table) => Object.entries(table));
}

/** The options table of docs/options.md, in Markdown. */
export function optionsMarkdown(): string {
  const rows = documentedOptions().map(([name, rule]) => {
    const seedNames = rule.aliases.map((alias) => `\`${alias}\``).join(', ');
    return `| \`${name}\` | ${seedNames} | ${rule.defaultText} | ${rule.summary} |`;
  });
  return ['| option | also accepted as | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** One option's summary and default as plain text, for `--help`. */
export function optionHelp(name: string): string {
  const rule = documentedOptions().find(([known]) => known === name)?.[1];
  if (rule === undefined) throw new Error(`no option ${name}`);
  const plain = (text: string): string => text.replace(/`/g, '');
  return `${plain(rule.summary)} (default: ${plain(rule.defaultText)})`;
}
