import { ServiceError } from '../ServiceError';

/** A request's integer field (a number in JSON, text in a form), checked against its bounds; undefined when absent. */
export function integerField(name: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  if (typeof value === 'boolean' || value === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new ServiceError('ERR_BAD_REQUEST', `${name} must be an integer between ${min} and ${max}, got '${String(value)}'`);
  }
  return n;
}
