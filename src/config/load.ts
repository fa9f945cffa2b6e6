import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FormatRegistry, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { parseDocument, isMap, isScalar, type Document } from 'yaml';
import ipaddr from 'ipaddr.js';
import { Config, defaults, type KabootConfig } from './schema.js';
import { checkSemantics } from './semantics.js';

FormatRegistry.Set('ipv4', (v) => ipaddr.IPv4.isValidFourPartDecimal(v));
FormatRegistry.Set('ipv4-cidr', (v) => {
  try {
    const [addr, len] = ipaddr.IPv4.parseCIDR(v);
    return ipaddr.IPv4.isValidFourPartDecimal(v.split('/')[0] ?? '') && len >= 0 && len <= 32 && addr.kind() === 'ipv4';
  } catch {
    return false;
  }
});

const compiled = TypeCompiler.Compile(Config);

/** A config problem: which file, which key, what is wrong, and what a right value looks like. */
export { ConfigError } from './errors.js';
import { ConfigError } from './errors.js';

export interface LoadedConfig {
  config: KabootConfig;
  /** the file it came from, or undefined for the built-in safe default */
  file: string | undefined;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Defaults under the user's values; arrays and scalars from the user replace the default whole. */
function mergeDefaults(base: unknown, over: unknown): unknown {
  if (over === undefined) return structuredClone(base);
  if (isPlainObject(base) && isPlainObject(over)) {
    const out: Record<string, unknown> = {};
    for (const k of new Set([...Object.keys(base), ...Object.keys(over)])) out[k] = mergeDefaults(base[k], over[k]);
    return out;
  }
  return over;
}

function lineOf(doc: Document, path: (string | number)[], text: string): number | undefined {
  for (let n = path.length; n > 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    const range = isScalar(node) || isMap(node) ? node.range : (node as { range?: [number, number] } | undefined)?.range;
    if (range) return text.slice(0, range[0]).split('\n').length;
  }
  return undefined;
}

function describeExpected(schema: TSchema): string {
  const s = schema as Record<string, unknown>;
  if (s.description) return `Expected ${String(s.description)}.`;
  if (Array.isArray(s.anyOf)) {
    const lits = (s.anyOf as Record<string, unknown>[]).map((x) => x.const).filter((x) => x !== undefined);
    if (lits.length) return `Expected one of: ${lits.map((l) => JSON.stringify(l)).join(', ')}.`;
  }
  if (s.type === 'integer') {
    const range = [s.minimum !== undefined ? `≥ ${s.minimum}` : '', s.maximum !== undefined ? `≤ ${s.maximum}` : ''].filter(Boolean).join(' and ');
    return `Expected a whole number${range ? ` ${range}` : ''}.`;
  }
  if (s.type === 'string') return `Expected a string${s.minLength ? ' (not empty)' : ''}.`;
  if (s.type === 'boolean') return 'Expected true or false.';
  if (s.type === 'array') return 'Expected a list.';
  if (s.type === 'object') return 'Expected a mapping of keys.';
  return 'See docs/config.md for the right form.';
}

function keyPath(pointer: string): (string | number)[] {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

function dotted(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${p}` : p)).join('');
}

/** Parse and validate one config text. Throws ConfigError naming file, key, problem and fix. */
export function parseConfig(text: string, file: string): KabootConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new ConfigError(file, '', `YAML syntax error: ${e.message.split('\n')[0]}`, 'Fix the YAML syntax.', e.linePos?.[0]?.line);
  }
  const raw = (doc.toJS() ?? {}) as Json;
  if (!isPlainObject(raw)) throw new ConfigError(file, '', 'the file is not a mapping of keys', 'Start from the example in docs/config.md.');
  const merged = mergeDefaults(defaults, raw);
  const first = compiled.Errors(merged).First();
  if (first) {
    const path = keyPath(first.path);
    const line = lineOf(doc, path, text);
    if (/unexpected property/i.test(first.message)) {
      const allowed = Object.keys((first.schema as { properties?: Record<string, unknown> }).properties ?? {});
      throw new ConfigError(file, dotted(path), 'unknown key', `Known keys here: ${allowed.join(', ')}.`, line);
    }
    const shown = JSON.stringify(first.value);
    throw new ConfigError(file, dotted(path), `${first.message.toLowerCase()} (got ${shown === undefined ? 'nothing' : shown})`, describeExpected(first.schema), line);
  }
  const config = merged as KabootConfig;
  const problem = checkSemantics(config);
  if (problem) throw new ConfigError(file, problem.key, problem.problem, problem.fix, lineOf(doc, keyPath('/' + problem.key.replace(/\[(\d+)\]/g, '/$1').replace(/\./g, '/')), text));
  return config;
}

/** Load kaboot.yaml, or the safe default when no file is given. Relative dirs are taken from the file's folder. */
export function loadConfig(file: string | undefined, cwd = process.cwd()): LoadedConfig {
  if (!file) {
    const config = structuredClone(defaults);
    config.images_dir = resolve(cwd, config.images_dir);
    config.state_dir = resolve(cwd, config.state_dir);
    return { config, file: undefined };
  }
  const path = resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, '', `cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`, 'Give the path of a readable YAML file.');
  }
  const config = parseConfig(text, path);
  config.images_dir = resolve(dirname(path), config.images_dir);
  config.state_dir = resolve(dirname(path), config.state_dir);
  return { config, file: path };
}
