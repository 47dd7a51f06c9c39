// Argument checks shared by every public entry point. Messages name the argument, what was expected and what
// was received, as "Expected <what> for <name> but received <value>".

/** Node's codes of the argument errors (TypeError / RangeError) that validation raises. */
export const ARGUMENT_ERROR_CODES = ['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_OUT_OF_RANGE', 'ERR_UNKNOWN_OPTION'] as const;
export type ArgumentErrorCode = typeof ARGUMENT_ERROR_CODES[number];

/** What each argument code means (Node's codes, raised on `TypeError` and `RangeError`). */
export const ARGUMENT_ERROR_MEANINGS: Readonly<Record<ArgumentErrorCode, string>> = {
  ERR_INVALID_ARG_TYPE: 'an argument or option of the wrong type (the message names it and what it got)',
  ERR_INVALID_ARG_VALUE: 'an argument or option of the right type but not an allowed value',
  ERR_OUT_OF_RANGE: 'a number outside its bounds (the message gives them)',
  ERR_UNKNOWN_OPTION: 'an option the call does not take (the message suggests the closest it does)',
};

type Coded<E extends Error> = E & { code: string };

function coded<E extends Error>(error: E, code: ArgumentErrorCode): Coded<E> {
  Object.defineProperty(error, 'code', { value: code, enumerable: true, configurable: true, writable: true });
  return error as Coded<E>;
}

/** A short, safe rendering of any value for an error message. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${typeof value} ${String(value)}`;
  }
  if (typeof value === 'function') return 'a function';
  if (ArrayBuffer.isView(value)) return `${value.constructor.name} of length ${(value as { length?: number }).length ?? value.byteLength}`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  const name = (value as object).constructor?.name;
  return name && name !== 'Object' ? `an instance of ${name}` : 'an object';
}

export function typeError(name: string, expected: string, value: unknown): Coded<TypeError> {
  return coded(new TypeError(`Expected ${expected} for ${name} but received ${describe(value)}`), 'ERR_INVALID_ARG_TYPE');
}

export function rangeError(name: string, expected: string, value: unknown): Coded<RangeError> {
  return coded(new RangeError(`Expected ${expected} for ${name} but received ${describe(value)}`), 'ERR_OUT_OF_RANGE');
}

export function valueError(name: string, expected: string, value: unknown): Coded<TypeError> {
  return coded(new TypeError(`Expected ${expected} for ${name} but received ${describe(value)}`), 'ERR_INVALID_ARG_VALUE');
}

export function integer(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw typeError(name, `an integer between ${min} and ${max}`, value);
  if (value < min || value > max) throw rangeError(name, `an integer between ${min} and ${max}`, value);
  return value;
}

/** A finite number in (min, max]. */
export function positive(name: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw typeError(name, `a number above 0 and at most ${max}`, value);
  if (!(value > 0 && value <= max)) throw rangeError(name, `a number above 0 and at most ${max}`, value);
  return value;
}

export function string(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw typeError(name, 'a non-empty string', value);
  return value;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** The closest of `candidates` to `word`, when it is close enough to be a plausible typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) { best = candidate; bestDistance = d; }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Checks that `value` is a plain options object (or undefined) whose keys are all known. */
export function options<T extends object>(name: string, value: unknown, known: readonly (keyof T & string)[]): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw typeError(name, 'an options object', value);
  for (const key of Object.keys(value)) {
    if (!(known as readonly string[]).includes(key)) {
      const guess = closest(key, known);
      const hint = guess ? `; did you mean '${guess}'?` : `; known options are ${known.join(', ')}`;
      throw coded(new TypeError(`Unknown option '${key}' in ${name}${hint}`), 'ERR_UNKNOWN_OPTION');
    }
  }
  return value as Partial<T>;
}
