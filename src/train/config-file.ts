// Configuration files (Node): a YAML or JSON file of option values, checked against the option
// table (train/config.ts) as the CLI's flags are.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { coerce, type OptionSpec } from './config.js';

/** Reads a YAML or JSON config file; unknown keys are errors naming the key. */
export function readConfigFile(path: string, specs: Record<string, OptionSpec>): Record<string, unknown> {
  let raw: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new Error(`config file ${path}: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new Error(`config file ${path}: expected a mapping of option names to values`);
  const out: Record<string, unknown> = {};
  for (const [k, value] of Object.entries(raw as Record<string, unknown>)) {
    const spec = specs[k] ?? Object.entries(specs).find(([, s]) => s.alias === k)?.[1];
    const key = specs[k] ? k : Object.entries(specs).find(([, s]) => s.alias === k)?.[0];
    if (!spec || !key) throw new Error(`config file ${path}: unknown option '${k}' (see --help)`);
    out[key] = coerce(key, spec, value, `config file ${path}`);
  }
  return out;
}
