/**
 * A bench's settings, from one parser: each setting has a flag (--rate 500), an environment
 * variable (BENCH_RATE=500) and a default, in that order of precedence, checked once at start (a
 * bad value stops the bench before it touches anything), with --help listing them all (commander).
 * The results record which settings were not the defaults, so a short check run is never mistaken
 * for a measurement.
 */
import { Command, InvalidArgumentError, Option } from 'commander';

interface Spec<T> {
  readonly flag: string;
  readonly env: string;
  readonly help: string;
  readonly fallback: T;
  readonly parse: (raw: string) => T;
  /** A switch that takes no value (--quick); set by the environment variable's mere presence. */
  readonly bare?: boolean;
  /** A method, so that a Spec<number> is a Spec<unknown> (methods are checked bivariantly). */
  show(value: T): string;
}

export type SettingSpecs = Record<string, Spec<unknown>>;
type Values<S extends SettingSpecs> = { readonly [K in keyof S]: S[K] extends Spec<infer T> ? T : never };

export interface Settings<S extends SettingSpecs> {
  readonly values: Values<S>;
  /** The settings given by flag or environment, as "--flag value". */
  readonly changed: readonly string[];
}

/** An integer in [min, max]. */
export function int(flag: string, env: string, fallback: number, min: number, max: number, help: string): Spec<number> {
  return {
    flag,
    env,
    help,
    fallback,
    show: String,
    parse: (raw) => {
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isInteger(value) || value < min || value > max) throw new InvalidArgumentError(`an integer from ${min} to ${max}`);
      return value;
    },
  };
}

/** A comma-separated list of integers, each in [min, max]. */
export function ints(flag: string, env: string, fallback: readonly number[], min: number, max: number, help: string): Spec<readonly number[]> {
  const one = int(flag, env, 0, min, max, help);
  return {
    flag,
    env,
    help,
    fallback,
    show: (v) => v.join(','),
    parse: (raw) => {
      const list = raw.split(',').map((s) => s.trim()).filter(Boolean).map(one.parse);
      if (list.length === 0) throw new InvalidArgumentError('at least one value');
      return list;
    },
  };
}

/** One or more of the choices, comma-separated (e.g. the servers or parts to run). */
export function choices<C extends string>(flag: string, env: string, all: readonly C[], help: string, fallback: readonly C[] = all): Spec<readonly C[]> {
  return {
    flag,
    env,
    help: `${help} (${all.join(', ')})`,
    fallback,
    show: (v) => v.join(','),
    parse: (raw) => {
      const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
      for (const item of list) if (!(all as readonly string[]).includes(item)) throw new InvalidArgumentError(`one or more of ${all.join(', ')}`);
      return list as C[];
    },
  };
}

/** Free text (a URL, a log level). */
export function text(flag: string, env: string, fallback: string, help: string): Spec<string> {
  return { flag, env, help, fallback, show: (v) => v, parse: (raw) => raw };
}

/** On or off: --flag / --no-flag, or 1/0 in the environment. */
export function onOff(flag: string, env: string, fallback: boolean, help: string): Spec<boolean> {
  return {
    flag,
    env,
    help,
    fallback,
    show: (v) => (v ? 'on' : 'off'),
    parse: (raw) => {
      if (['1', 'on', 'true', 'yes'].includes(raw)) return true;
      if (['0', 'off', 'false', 'no'].includes(raw)) return false;
      throw new InvalidArgumentError('on or off (1 or 0)');
    },
  };
}

/** A switch without a value: --quick sets it (so does its environment variable, whatever its value). */
export function flag(flag: string, env: string, help: string): Spec<boolean> {
  return { flag, env, help, fallback: false, bare: true, show: (v) => (v ? 'on' : 'off'), parse: () => true };
}

/** Parses argv and the environment against the specs; prints --help and exits when asked. */
export function parseSettings<S extends SettingSpecs>(bench: string, description: string, specs: S, argv: readonly string[] = process.argv): Settings<S> {
  // A bench's name (`npm run bench:<name> --`), or its whole command when it is another script (`npm run chaos --`).
  const program = new Command(bench.startsWith('npm ') ? bench : `npm run bench:${bench} --`).description(description).allowExcessArguments(false).showHelpAfterError();
  for (const [key, spec] of Object.entries(specs)) {
    const option = spec.bare
      ? new Option(spec.flag, spec.help).env(spec.env).default(false)
      : new Option(`${spec.flag} <value>`, spec.help).env(spec.env).default(spec.fallback, spec.show(spec.fallback)).argParser((raw) => spec.parse(raw));
    option.attributeName = () => key;
    program.addOption(option);
  }
  program.parse([...argv]);
  const options = program.opts();
  const values: Record<string, unknown> = {};
  const changed: string[] = [];
  for (const [key, spec] of Object.entries(specs)) {
    values[key] = options[key];
    const source = program.getOptionValueSource(key);
    if (source === 'cli' || source === 'env') changed.push(spec.bare ? spec.flag : `${spec.flag} ${spec.show(options[key])}`);
  }
  return { values: values as Values<S>, changed };
}
