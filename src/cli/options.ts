// Builds commander flags from an option table (src/train/config.ts) and resolves the final
// configuration: flags given on the command line > --config file > defaults.
import { Command, Option } from 'commander';
import { coerce, defaultsOf, type ConfigOf, type OptionSpec } from '../train/config.js';
import { readConfigFile } from '../train/config-file.js';

function describe(s: OptionSpec): string {
  const d = Array.isArray(s.default)
    ? s.default.length
      ? s.default.join(',')
      : '(none)'
    : s.default === ''
      ? '(none)'
      : String(s.default);
  return `${s.help}${s.required ? '' : ` (default: ${d})`}${s.alias ? ` [alias --${s.alias}]` : ''}`;
}

/** Adds one flag per option (bool flags take an optional true/false). */
export function addOptions(cmd: Command, specs: Record<string, OptionSpec>): Command {
  for (const [key, s] of Object.entries(specs)) {
    // commander names a flag after its long form; aliases are separate flags mapped below.
    const arg = {
      bool: '[bool]',
      list: '<list>',
      strings: '<text...>',
      number: '<value>',
      int: '<value>',
      string: '<value>',
    }[s.type];
    const o = new Option(`--${key} ${arg}`, describe(s));
    if (s.choices) o.choices([...s.choices]);
    if (s.required) o.makeOptionMandatory();
    cmd.addOption(o);
    if (s.alias)
      cmd.addOption(
        new Option(`--${s.alias} ${s.type === 'bool' ? '[bool]' : '<value>'}`, `same as --${key}`).hideHelp(),
      );
  }
  return cmd;
}

/** The configuration from defaults, the --config file and the flags actually given. */
export function resolveOptions<T extends Record<string, OptionSpec>>(cmd: Command, specs: T): ConfigOf<T> {
  const cfg = defaultsOf(specs) as Record<string, unknown>;
  const given = cmd.opts() as Record<string, unknown>;
  const fromCli = (key: string): unknown => {
    const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    for (const k of [key, camel]) if (given[k] !== undefined && cmd.getOptionValueSource(k) === 'cli') return given[k];
    return undefined;
  };
  const configPath = (fromCli('config') as string | undefined) ?? '';
  if (configPath) Object.assign(cfg, readConfigFile(configPath, specs));
  for (const [key, s] of Object.entries(specs)) {
    let v = fromCli(key);
    if (v === undefined && s.alias) v = fromCli(s.alias);
    if (v === undefined) continue;
    cfg[key] = coerce(key, s, s.type === 'bool' && v === true ? true : v, 'command line');
  }
  return cfg as ConfigOf<T>;
}
