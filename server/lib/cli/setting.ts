// How the server's commands read a setting: the flag's value, else its environment variable's (an empty variable
// counts as unset).
import { ParsedValues, stringOption } from 'torch-optical-flow/internal';

/** A flag's value, else its environment variable's. */
export function setting(values: ParsedValues, flag: string, env: string): string | undefined {
  return stringOption(values, flag) ?? (process.env[env] || undefined);
}
